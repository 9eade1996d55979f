// The two-step listing: the grid and its first thumbnails come from the
// first step (names, sizes, usable or not by the first bytes); what each
// photo carries follows, and fills the cards in (a damaged file is greyed
// then). Records the cards as they are when the first thumbnail is shown,
// and the order of the requests (resource timing). Prints JSON.
//
// usage: node listing.mjs URL SHOTS_DIR
import { chromium } from 'playwright-core';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const report = { console: [] };
const cardsNow = () => [...document.querySelectorAll('.card')].map((c) => ({
  name: c.dataset.name,
  unusable: c.classList.contains('unusable'),
  thumb: !!c.querySelector('img'),
  pending: !!c.querySelector('.pending'),
  carries: (c.querySelector('.carries') || { textContent: '' }).textContent,
  size: (c.querySelector('.size') || { textContent: '' }).textContent,
  reason: (c.querySelector('.error') || { textContent: '' }).textContent,
}));
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  // The moment the first thumbnail is shown: what the cards say then.
  await page.addInitScript(`(${(snapshot) => {
    document.addEventListener('load', (e) => {
      if (window.atFirstThumb || !(e.target instanceof HTMLImageElement) || !e.target.closest('.card')) return;
      window.atFirstThumb = {
        details: document.body.dataset.details || null,
        status: document.getElementById('grid-status').textContent,
        cards: snapshot(),
      };
    }, true);
  }})(${cardsNow.toString()})`);
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.details === 'shown', null, { timeout: 60000 });
  await page.waitForFunction(() => [...document.querySelectorAll('.card img')]
    .every((i) => i.complete && i.naturalWidth > 0));
  report.atFirstThumb = await page.evaluate(() => window.atFirstThumb);
  report.after = await page.evaluate(cardsNow);
  report.status = await page.locator('#grid-status').textContent();
  report.requests = await page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => ({ path: new URL(e.name).pathname, start: e.startTime, end: e.responseEnd })));
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: `${shots}/listing-${w}x${h}.png` });
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
