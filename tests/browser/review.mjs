// Reviewing a series and getting the results out: the grid's thumbnails show
// the regions as they will be exported, the filter and per-case ticking, the
// review view of every ticked photo, the ZIP of the export, plain words, and
// a second export of the same photos found "up to date". Saves screenshots
// of the grid and the review at desktop and phone sizes. Prints a JSON
// report for tests/browser.rs.
//
// usage: node review.mjs URL PHOTO_NAME CASE SHOTS_DIR
import { chromium } from 'playwright-core';

const [url, photoName, caseName, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const report = { console: [] };

// Mean and largest channel value of an image's pixels in the box (fractions).
const sample = (img, box) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const [x0, y0, x1, y1] = [box[0] * c.width, box[1] * c.height, box[2] * c.width, box[3] * c.height]
    .map(Math.round);
  const d = g.getImageData(x0, y0, x1 - x0, y1 - y0).data;
  let sum = 0;
  let max = 0;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    for (let k = 0; k < 3; k++) {
      sum += d[i + k];
      max = Math.max(max, d[i + k]);
      n += 1;
    }
  }
  return { mean: sum / n, max };
};
const INSIDE = [0.3, 0.3, 0.5, 0.5];

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  await page.goto(url);
  const card = page.locator('.card', { has: page.getByText(photoName, { exact: true }) });
  await card.waitFor();
  const thumbsLoaded = () => page.waitForFunction(() => [...document.querySelectorAll('.card img')]
    .every((i) => i.complete && i.naturalWidth > 0));
  await thumbsLoaded();
  const thumb = card.locator('img');
  report.rawThumb = await thumb.evaluate(sample, INSIDE);
  report.rawSrc = await thumb.getAttribute('src');

  // Draw a region (20%-60%) on the photo, go back: the thumbnail is redacted.
  let n = await page.evaluate(() => window.photodeid.previewsDone);
  await card.getByRole('button', { name: /Mark regions/ }).click();
  await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
  const box = await page.locator('#stage-img').boundingBox();
  n = await page.evaluate(() => window.photodeid.previewsDone);
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.6, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
  report.previewStatus = await page.locator('#preview-status').textContent();
  report.previewTiming = await page.locator('#preview-timing').textContent();
  await page.getByRole('button', { name: 'Back to all photos' }).click();
  await page.waitForFunction(() => !window.photodeid.unsaved());
  await page.waitForFunction((raw) => {
    const img = [...document.querySelectorAll('.card img')].find((i) => i.alt.startsWith(`Photo ${raw.name},`));
    return img && img.getAttribute('src') !== raw.src && img.complete && img.naturalWidth > 0;
  }, { name: photoName, src: report.rawSrc });
  report.redactedThumb = await card.locator('img').evaluate(sample, INSIDE);
  report.redactedSrc = await card.locator('img').getAttribute('src');

  // The filter.
  const names = () => page.locator('.card').evaluateAll((cs) => cs.map((c) => c.dataset.name));
  report.allCards = (await names()).length;
  await page.locator('#filter-status').selectOption('marked');
  report.filterMarked = await names();
  await page.locator('#filter-status').selectOption('needs');
  report.filterNeeds = await names();
  await page.locator('#filter-status').selectOption('');
  await page.locator('#filter-text').fill(caseName.slice(0, 8));
  report.filterText = await names();
  report.filterCount = await page.locator('#filter-count').textContent();
  await page.locator('#filter-text').fill('');

  // Per case: untick the case, tick it again, then untick one of its photos.
  const ticked = () => page.locator('.card input[type=checkbox]').evaluateAll(
    (cs) => cs.filter((c) => c.checked).map((c) => c.closest('.card').dataset.name));
  await page.getByRole('button', { name: `Untick every photo of case ${caseName}`, exact: true }).click();
  report.afterUntickCase = await ticked();
  await page.getByRole('button', { name: `Tick every photo of case ${caseName}`, exact: true }).click();
  report.afterTickCase = await ticked();
  await page.locator(`.series[data-series="${caseName}"] .card input[type=checkbox]`).first().uncheck();
  report.ticked = await ticked();
  await thumbsLoaded();
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: `${shots}/review-grid-${w}x${h}.png` });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // The review: every ticked photo, as it will be exported.
  await page.getByRole('button', { name: 'Review the ticked photos' }).click();
  const items = page.locator('.review-item');
  await items.first().waitFor();
  report.review = await items.evaluateAll((is) => is.map((i) => i.dataset.name));
  for (let i = 0; i < report.review.length; i++) {
    const img = items.nth(i).locator('img');
    await img.scrollIntoViewIfNeeded();
    await img.evaluate((e) => (e.complete && e.naturalWidth > 0) || new Promise((r) => { e.onload = r; e.onerror = r; }));
  }
  report.reviewLoaded = await items.locator('img').evaluateAll((is) => is.every((i) => i.naturalWidth > 0));
  const reviewed = page.locator('.review-item', { has: page.getByText(photoName, { exact: true }) });
  report.reviewRedacted = await reviewed.locator('img').evaluate(sample, INSIDE);
  report.reviewWords = await reviewed.textContent();
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.locator('#review').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${shots}/review-${w}x${h}.png` });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole('button', { name: 'Close the review' }).click();

  // Export, then the ZIP of exactly what was exported.
  const exportOnce = async () => {
    await page.locator('#results').evaluate((r) => r.replaceChildren());
    await page.getByRole('button', { name: 'Export selected photos' }).click();
    await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
    report.finished = (report.finished || []).concat([await page.locator('#progress-text').textContent()]);
    return page.locator('#results tbody tr').evaluateAll((rs) => rs.map((r) => ({
      name: r.cells[0].textContent,
      output: r.cells[1].textContent,
      words: r.cells[2].querySelector('details')
        ? r.cells[2].firstChild.textContent : r.cells[2].textContent,
      details: (r.cells[2].querySelector('details') || { textContent: '' }).textContent,
    })));
  };
  report.first = await exportOnce();
  report.zipText = await page.locator('#download-zip').textContent();
  const href = await page.locator('#download-zip').getAttribute('href');
  report.zip = await page.evaluate(async (h) => {
    const r = await fetch(h);
    const b = new Uint8Array(await r.arrayBuffer());
    let s = '';
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
    return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), base64: btoa(s) };
  }, href);
  // The same photos again: up to date, no copy written.
  report.second = await exportOnce();
  await page.screenshot({ path: `${shots}/results-again-1280x900.png` });

  // Reloaded: each card says where its photo went.
  await page.reload();
  await card.waitFor();
  report.exportedLine = await card.locator('.exported').textContent();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
