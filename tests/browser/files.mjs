// Nothing hidden: every file of the folder is listed; those that cannot be
// used are greyed with the reason; a case collage that would lack one asks
// first and says so. Also saves a screenshot of each main screen at desktop
// and phone sizes. Prints a JSON report for tests/browser.rs.
//
// usage: node files.mjs URL SHOTS_DIR
import { chromium } from 'playwright-core';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const report = { console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.locator('.card').first().waitFor();
  // The listing's second step (what each carries; damaged files greyed).
  await page.waitForFunction(() => document.body.dataset.details === 'shown');
  await page.waitForFunction(() => [...document.querySelectorAll('.card img')]
    .every((i) => i.complete && i.naturalWidth > 0));
  report.status = await page.locator('#grid-status').textContent();
  report.cards = await page.locator('.card').evaluateAll((cs) => cs.map((c) => ({
    name: c.dataset.name,
    unusable: c.classList.contains('unusable'),
    disabled: c.querySelector('input[type=checkbox]').disabled,
    reason: (c.querySelector('.error') || { textContent: '' }).textContent,
  })));
  report.exportInView = await page.locator('#export').evaluate((b) => {
    const r = b.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight;
  });
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: `${shots}/grid-${w}x${h}.png` });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // Collage with a case that holds a damaged file: asked, cancel, then go.
  await page.locator('#collage').check();
  await page.getByRole('button', { name: 'Export selected photos' }).click();
  await page.locator('#collage-question').waitFor();
  report.question = await page.locator('#collage-question').textContent();
  await page.getByRole('button', { name: 'Cancel' }).click();
  report.afterCancel = await page.locator('#progress-text').textContent();
  await page.getByRole('button', { name: 'Export selected photos' }).click();
  await page.getByRole('button', { name: 'Make the collages without them' }).click();
  await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
  report.collages = await page.locator('#results li').allTextContents();
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.locator('#results').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${shots}/results-${w}x${h}.png` });
  }
  // The editor.
  await page.setViewportSize({ width: 1280, height: 900 });
  const n = await page.evaluate(() => window.photodeid.previewsDone);
  await page.locator('.card:not(.unusable)').first().getByRole('button', { name: /Mark regions/ }).click();
  await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: `${shots}/editor-${w}x${h}.png` });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  // Previous/Next and zoom, with the keyboard.
  report.firstName = await page.locator('#editor-name').textContent();
  report.prevDisabled = await page.locator('#prev-photo').isDisabled();
  let k = await page.evaluate(() => window.photodeid.previewsDone);
  await page.locator('#editor-title').focus();
  await page.keyboard.press('PageDown');
  await page.waitForFunction((x) => window.photodeid.previewsDone > x, k);
  report.nextName = await page.locator('#editor-name').textContent();
  k = await page.evaluate(() => window.photodeid.previewsDone);
  await page.getByRole('button', { name: 'Previous photo' }).click();
  await page.waitForFunction((x) => window.photodeid.previewsDone > x, k);
  report.backName = await page.locator('#editor-name').textContent();
  const w0 = (await page.locator('#stage-img').boundingBox()).width;
  await page.keyboard.press('+');
  report.zoomLevel = await page.locator('#zoom-level').textContent();
  report.zoomRatio = (await page.locator('#stage-img').boundingBox()).width / w0;
  await page.screenshot({ path: `${shots}/editor-zoomed-1280x900.png` });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
