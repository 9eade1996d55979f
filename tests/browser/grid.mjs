// Grid latency on a large folder (scripts/serve-latency.sh GRID=N): from
// opening the page to the first screen of thumbnails shown, then scrolling
// down screen by screen until every thumbnail is shown. Prints JSON.
//
// usage: node grid.mjs URL
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const report = { console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  const t0 = Date.now();
  await page.goto(url);
  await page.locator('.card img').first().waitFor();
  report.listedMs = Date.now() - t0;
  // The thumbnails in view are shown (functions written out: the page's
  // CSP forbids eval).
  const viewShown = () => [...document.querySelectorAll('.card img')]
    .filter((i) => { const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; })
    .every((i) => i.complete && i.naturalWidth > 0);
  await page.waitForFunction(viewShown, null, { timeout: 120000 });
  report.firstScreenMs = Date.now() - t0;
  report.firstScreenCount = await page.evaluate(() => [...document.querySelectorAll('.card img')]
    .filter((i) => { const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }).length);
  // Scroll one screen at a time, waiting for what is in view.
  for (;;) {
    const done = await page.evaluate(() => [...document.querySelectorAll('.card img')]
      .every((i) => i.complete && i.naturalWidth > 0));
    if (done) break;
    await page.waitForFunction(viewShown, null, { timeout: 120000 });
    await page.evaluate(() => window.scrollBy(0, innerHeight));
  }
  report.allMs = Date.now() - t0;
  report.count = await page.locator('.card img').count();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
