// The collage editor in headless Chromium: the first case's collage is
// previewed at its final size; change the size, drag a panel, zoom another
// with the wheel, edit a label, choose "social media" (no permission on
// file), export: the page asks for the signed form's date, records it and
// makes the collage. Saves a screenshot; prints a JSON report for
// tests/browser.rs, which checks the files on disk.
//
// usage: node collage.mjs URL SCREENSHOT.png
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const report = { console: [] };
const previews = (page) => page.evaluate(() => window.photodeid.collagePreviews);
const after = async (page, n) => {
  try {
    await page.waitForFunction((k) => window.photodeid.collagePreviews > k, n, { timeout: 30000 });
  } catch (e) {
    const status = await page.locator('#collage-status').textContent();
    throw new Error(`no new preview (status: ${status}); console: ${report.console.join(' | ')}`);
  }
};
const state = (page) => page.evaluate(() => window.photodeid.collage());
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  const origin = new URL(url).origin;
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('blob:') || u.startsWith('data:')) return route.continue();
    report.console.push(`blocked outside request: ${u}`);
    return route.abort();
  });
  await page.goto(url);
  await page.waitForFunction(() => window.photodeid.collagePreviews > 0, null, { timeout: 60000 });
  let s = await state(page);
  report.series = s.series;
  report.first = { width: s.plan.width, height: s.plan.height };
  report.natural = await page.locator('#collage-preview').evaluate((i) => [i.naturalWidth, i.naturalHeight]);

  // Size: square.
  let n = await previews(page);
  await page.getByLabel('Size').selectOption('square');
  await after(page, n);
  s = await state(page);
  report.square = { width: s.plan.width, height: s.plan.height, tiles: s.plan.tiles.length };

  // Drag the first panel 80 px to the right: its photo moves right.
  const id0 = s.plan.order[0];
  report.before = s.framing[id0] || null;
  // Centred in the window: the sticky export bar covers the bottom edge.
  await page.locator('.panel-box[data-index="0"]').evaluate((b) => b.scrollIntoView({ block: 'center' }));
  const box = await page.locator('.panel-box[data-index="0"]').boundingBox();
  n = await previews(page);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  for (let k = 1; k <= 8; k++) await page.mouse.move(box.x + box.width / 2 + k * 10, box.y + box.height / 2);
  await page.mouse.up();
  await after(page, n);
  s = await state(page);
  report.dragged = { id: id0, framing: s.framing[id0], crop: s.plan.crops[0] };

  // Zoom the second panel with the wheel.
  const id1 = s.plan.order[1];
  // Centred in the window: the sticky export bar covers the bottom edge.
  await page.locator('.panel-box[data-index="1"]').evaluate((b) => b.scrollIntoView({ block: 'center' }));
  const box1 = await page.locator('.panel-box[data-index="1"]').boundingBox();
  n = await previews(page);
  await page.mouse.move(box1.x + box1.width / 2, box1.y + box1.height / 2);
  await page.mouse.wheel(0, -120);
  await after(page, n);
  s = await state(page);
  report.zoomed = { id: id1, framing: s.framing[id1], crop: s.plan.crops[1] };

  // Edit the first label.
  n = await previews(page);
  await page.locator('#collage-label-0').fill('Week 0');
  await after(page, n);
  s = await state(page);
  report.labels = s.plan.labels;

  // Preview refresh times (a size change, each time).
  for (const size of ['portrait', 'story', 'landscape', 'square', 'portrait']) {
    n = await previews(page);
    await page.getByLabel('Size').selectOption(size);
    await after(page, n);
  }
  s = await state(page);
  report.final = { width: s.plan.width, height: s.plan.height };
  report.timings = await page.evaluate(() => window.photodeid.collageTimings);
  // From the input change (before the debounce) to the new image's load.
  const t = report.timings.map((x) => x.fromInput).sort((a, b) => a - b);
  report.timing = { n: t.length, median: t[Math.floor(t.length / 2)], max: t[t.length - 1] };
  await page.waitForFunction(() => (window.photodeid.collageSaves || 0) > 0);
  await page.locator('#collage-section').screenshot({ path: screenshot });

  // For social media: no permission on file; exporting asks for it.
  await page.getByLabel('For', { exact: true }).selectOption('social-media');
  await page.waitForFunction(() => document.querySelector('#consent-status').textContent.length > 0);
  report.consentBefore = await page.locator('#consent-status').textContent();
  report.badgeBefore = await page.locator('.series .consent').first().textContent();
  await page.locator('#collage').check();
  await page.getByRole('button', { name: 'Export selected photos' }).click();
  await page.locator('#consent-question').waitFor();
  report.question = await page.locator('#consent-question').textContent();
  await page.locator('#consent-date').fill('2024-03-01');
  await page.getByRole('button', { name: 'Record the signed permission' }).click();
  await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
  report.consentAfter = await page.locator('#consent-status').textContent();
  report.collages = await page.locator('#results li').allTextContents();
  report.unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.outerHTML));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
