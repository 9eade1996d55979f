// The collage editor with a practice style (serve --style): the profile is
// the default (its size, colours, logo); switch to no style and back, move
// the logo to another corner, draw a crop rectangle on the first panel,
// read the recommended command, export. Measures the preview refresh (from
// the input change to the new image's load) and reports median and max.
// Saves a screenshot; prints a JSON report for tests/browser.rs.
//
// usage: node collage-style.mjs URL SCREENSHOT.png
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
  await page.goto(url);
  await page.waitForFunction(() => window.photodeid.collagePreviews > 0, null, { timeout: 60000 });
  let s = await state(page);
  report.styleDefault = s.settings.style;
  report.first = { width: s.plan.width, height: s.plan.height, background: s.settings.background };
  report.logoFieldsShown = await page.locator('#collage-logo-fields').isVisible();

  // Change the style: none, then the practice's again.
  let n = await previews(page);
  await page.getByLabel('Practice style').selectOption('');
  await after(page, n);
  s = await state(page);
  report.none = { width: s.plan.width, height: s.plan.height, command: s.command };
  n = await previews(page);
  await page.getByLabel('Practice style').selectOption('practice');
  await after(page, n);
  // The logo in another corner.
  n = await previews(page);
  await page.getByLabel('Logo corner').selectOption('bottom-left');
  await after(page, n);
  s = await state(page);
  report.styled = { width: s.plan.width, height: s.plan.height, command: s.command };

  // Draw the crop on the first panel: from 20%,20% of it, right and down.
  const id0 = s.plan.order[0];
  report.cropBefore = s.plan.crops[0];
  await page.locator('.panel-box[data-index="0"]').evaluate((b) => b.scrollIntoView({ block: 'center' }));
  const box = await page.locator('.panel-box[data-index="0"]').boundingBox();
  await page.getByRole('button', { name: 'Draw the crop' }).click();
  report.pressed = await page.locator('#panel-crop').getAttribute('aria-pressed');
  n = await previews(page);
  const [x0, y0] = [box.x + box.width * 0.2, box.y + box.height * 0.2];
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  for (let k = 1; k <= 10; k++) await page.mouse.move(x0 + k * box.width * 0.04, y0 + k * box.height * 0.025);
  await page.mouse.up();
  await after(page, n);
  s = await state(page);
  report.cropped = { id: id0, framing: s.framing[id0], crop: s.plan.crops[0] };
  report.pressedAfter = await page.locator('#panel-crop').getAttribute('aria-pressed');

  // Refresh times: a few more input changes.
  for (const c of ['top-right', 'top-left', 'bottom-right', 'bottom-left']) {
    n = await previews(page);
    await page.getByLabel('Logo corner').selectOption(c);
    await after(page, n);
  }
  const t = (await page.evaluate(() => window.photodeid.collageTimings)).map((x) => x.fromInput);
  const sorted = [...t].sort((a, b) => a - b);
  report.timing = { n: t.length, median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1], all: t,
    server: (await page.evaluate(() => window.photodeid.collageTimings)).map((x) => x.server) };
  report.command = await page.locator('#collage-command').textContent();
  await page.waitForFunction(() => (window.photodeid.collageSaves || 0) > 0);
  await page.locator('#collage-section').screenshot({ path: screenshot });

  await page.locator('#collage').check();
  await page.getByRole('button', { name: 'Export selected photos' }).click();
  await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
  report.collages = await page.locator('#results li').allTextContents();
  report.unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.outerHTML));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
