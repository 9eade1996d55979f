// Drives `photodeid serve` in headless Chromium: opens the page, opens the
// editor on one photo, draws a region with real mouse events, saves a
// screenshot of the editor, exports, and prints a JSON report on stdout
// (timings, export results). The Rust test (tests/browser.rs) checks the
// exported file on disk.
//
// usage: node run.mjs URL PHOTO_NAME SCREENSHOT.png [REPEATS]
//   URL         the address `photodeid serve` printed (token included)
//   PHOTO_NAME  the photo to draw on, as listed on the page
//   REPEATS     open the editor and redraw this many times (latency figures)
// env: CHROMIUM (default /usr/bin/chromium), EXPORT=0 to skip the export.
import { chromium } from 'playwright-core';

const [url, photoName, screenshot, repeatsArg] = process.argv.slice(2);
if (!url || !photoName || !screenshot) {
  console.error('usage: node run.mjs URL PHOTO_NAME SCREENSHOT.png [REPEATS]');
  process.exit(2);
}
const repeats = Number(repeatsArg || 1);
// The region drawn, in percent of the displayed photo.
const FROM = [0.2, 0.2];
const TO = [0.6, 0.6];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const report = { timings: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  // Refuse anything that is not the local server: the page must work offline.
  const origin = new URL(url).origin;
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('blob:') || u.startsWith('data:')) return route.continue();
    report.console.push(`blocked outside request: ${u}`);
    return route.abort();
  });
  await page.goto(url);
  const card = page.locator('.card', { has: page.getByText(photoName, { exact: true }) });
  await card.waitFor();
  // Thumbnails are real images made by the engine.
  await page.waitForFunction(() => [...document.querySelectorAll('.card img')]
    .every((i) => i.complete && i.naturalWidth > 0));

  for (let round = 0; round < repeats; round++) {
    // Click → photo shown at screen size.
    let before = await page.evaluate(() => window.photodeid.previewsDone);
    const t0 = Date.now();
    await card.getByRole('button', { name: /Mark regions/ }).click();
    await page.waitForFunction((n) => window.photodeid.previewsDone > n, before);
    const openMs = Date.now() - t0;
    const img = page.locator('#stage-img');
    const box = await img.boundingBox();
    // Draw with real mouse events: press, move in steps, release.
    before = await page.evaluate(() => window.photodeid.previewsDone);
    await page.mouse.move(box.x + box.width * FROM[0], box.y + box.height * FROM[1]);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * TO[0], box.y + box.height * TO[1], { steps: 12 });
    const t1 = Date.now();
    await page.mouse.up();
    await page.waitForFunction((n) => window.photodeid.previewsDone > n, before);
    const editMs = Date.now() - t1;
    const inPage = await page.evaluate(() => window.photodeid.timings.slice(-2));
    report.timings.push({ openMs, editMs, inPage });
    if (round === 0) {
      // Every control has a name a screen reader can say.
      report.unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button')]
        .filter((e) => e.offsetParent !== null)
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map((e) => e.outerHTML));
      await page.locator('#editor').screenshot({ path: screenshot });
      report.regions = await page.locator('#stage .region').count();
      report.status = await page.locator('#preview-status').textContent();
    }
    if (round + 1 < repeats) {
      // Remove the region again so each round draws one.
      const n = await page.evaluate(() => window.photodeid.previewsDone);
      await page.locator('#stage .region').first().focus();
      await page.keyboard.press('Delete');
      await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
    }
    await page.getByRole('button', { name: 'Back to all photos' }).click();
  }

  if (process.env.KEYBOARD !== '0') {
    // Keyboard only: open the first photo of the case, add a region, move it
    // with the arrow keys, copy it to the rest of the series.
    const first = page.locator('.card').first();
    await first.getByRole('button', { name: /Mark regions/ }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#add-region').focus();
    let n = await page.evaluate(() => window.photodeid.previewsDone);
    await page.keyboard.press('Enter');
    await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
    const region = page.locator('#stage .region').first();
    const x0 = await page.locator('#r0-x').inputValue();
    n = await page.evaluate(() => window.photodeid.previewsDone);
    await region.focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Shift+ArrowDown');
    await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
    report.keyboard = {
      x0, x1: await page.locator('#r0-x').inputValue(), h: await page.locator('#r0-h').inputValue(),
    };
    await page.locator('#copy-series').focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('copy-status').textContent !== '');
    report.keyboard.copied = await page.locator('#copy-status').textContent();
    await page.locator('#close-editor').focus();
    await page.keyboard.press('Enter');
    report.keyboard.toCheck = await page.locator('.card .to-check').count();
    report.keyboard.cards = await page.locator('.card').evaluateAll(
      (cards) => cards.map((c) => c.textContent.includes('1 region marked')));
  }

  if (process.env.EXPORT !== '0') {
    await page.getByRole('button', { name: 'Export selected photos' }).click();
    await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
    report.progressText = await page.locator('#progress-text').textContent();
    report.export = await page.evaluate(async () => {
      const token = document.querySelector('meta[name="photodeid-token"]').content;
      const r = await fetch('/api/export', { headers: { 'X-Photodeid-Token': token } });
      return r.json();
    });
    await page.screenshot({ path: screenshot.replace(/\.png$/, '-results.png'), fullPage: true });
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
