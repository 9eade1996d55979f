// Face proposals in headless Chromium: a photo without a face shows the
// "No face found" banner; on a portrait the proposed face outline is read
// off the page (fractions of the shown photo), the eye bar alone is accepted
// (the eyes-only note must appear), then "Accept all faces" (the note must
// go), the page is reloaded (the accepted regions were saved), a screenshot
// of the editor is taken, the regions are copied to the series (they follow
// the face found on the other photo), and everything is exported. The Rust
// test (tests/browser.rs, mod faces) checks the figures and the exported file.
//
// usage: node faces.mjs URL PORTRAIT SAME_SERIES NEGATIVE SCREENSHOT.png
//   (names as listed on the page: paths from the folder served)
// env: CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const [url, portrait, second, negative, screenshot] = process.argv.slice(2);
if (!url || !portrait || !second || !negative || !screenshot) {
  console.error('usage: node faces.mjs URL PORTRAIT SAME_SERIES NEGATIVE SCREENSHOT.png');
  process.exit(2);
}
// Detection runs in the server on first open; a debug build is slower.
const DETECT_MS = 180000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const report = { console: [] };
const previews = (page) => page.evaluate(() => window.photodeid.previewsDone);
const nextPreview = (page, n) => page.waitForFunction((k) => window.photodeid.previewsDone > k, n);

// Opens the editor on `name` and waits until its proposals are loaded.
async function open(page, name) {
  const card = page.locator(`.card[data-name="${name}"]`);
  await card.waitFor();
  const n = await previews(page);
  await card.getByRole('button', { name: /Mark regions/ }).click();
  await nextPreview(page, n);
  await page.waitForFunction(() => {
    const p = document.getElementById('proposals');
    return p && !p.textContent.includes('Looking for faces');
  }, null, { timeout: DETECT_MS });
}

// The outline's box in fractions of the shown photo.
async function fractions(page, locator) {
  const img = await page.locator('#stage-img').boundingBox();
  const b = await locator.boundingBox();
  return [
    (b.x - img.x) / img.width, (b.y - img.y) / img.height,
    (b.x + b.width - img.x) / img.width, (b.y + b.height - img.y) / img.height,
  ];
}

async function saved(page) {
  await page.waitForFunction(() => state.dirty.size === 0 && !state.saving
    && !document.getElementById('save-status').textContent.includes('Saving'));
}

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
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

  // The photo without a face.
  await open(page, negative);
  report.negative = {
    banner: await page.locator('#proposals .banner').allTextContents(),
    likely: await page.locator('#stage .proposal.face:not(.maybe)').count(),
    acceptAll: await page.locator('#accept-faces').count(),
  };
  await page.getByRole('button', { name: 'Back to all photos' }).click();

  // The portrait.
  await open(page, portrait);
  const likely = page.locator('#stage .proposal.face:not(.maybe)');
  report.likely = await likely.count();
  report.banner = await page.locator('#proposals .banner').count();
  report.faces = [];
  for (let i = 0; i < report.likely; i++) {
    const o = likely.nth(i);
    report.faces.push({
      key: await o.getAttribute('data-key'),
      box: await fractions(page, o),
      score: await o.locator('.score').textContent(),
    });
  }
  report.listed = await page.locator('#proposals .proposal-list li').allTextContents();
  const key = report.faces.length ? report.faces[0].key : 'face0';
  const eyesKey = key.replace('face', 'eyes');
  report.eyesBox = await fractions(page, page.locator(`#stage .proposal[data-key="${eyesKey}"]`));

  // The eye bar alone: the note says it is not enough.
  let n = await previews(page);
  await page.locator(`#proposals button.accept[data-key="${eyesKey}"]`).click();
  await nextPreview(page, n);
  report.eyesOnly = {
    regions: await page.locator('#stage .region').count(),
    note: await page.locator('#eyes-only-note').allTextContents(),
  };
  // Then every face: the note goes.
  n = await previews(page);
  await page.locator('#accept-faces').click();
  await nextPreview(page, n);
  report.withFace = {
    regions: await page.locator('#stage .region').count(),
    note: await page.locator('#eyes-only-note').count(),
    outlines: await page.locator('#stage .proposal').count(),
  };
  await saved(page);
  await page.locator('#editor').screenshot({ path: screenshot });

  // Copy to the series once the other photo's faces are known: the regions
  // follow its face.
  const ids = await page.evaluate(([a, b]) => [a, b].map((n) => state.photos.find((q) => q.name === n).id),
    [portrait, second]);
  await page.waitForFunction((id) => {
    const d = faces.byPhoto.get(id);
    return d && !d.loading;
  }, ids[1], { timeout: DETECT_MS });
  await page.locator('#copy-series').click();
  await page.waitForFunction(() => document.getElementById('copy-status').textContent !== '');
  report.copy = await page.evaluate(([a, b]) => ({
    status: document.getElementById('copy-status').textContent,
    regions: regionsOf(b).map((r) => Object.assign({}, r)),
    faces: faces.byPhoto.get(b).faces.filter((f) => f.likely).map((f) => f.face),
    photo: (({ width, height }) => ({ width, height }))(state.photos.find((q) => q.id === b)),
  }), ids);
  await saved(page);

  // Accepted proposals are ordinary saved regions: they survive a reload.
  await page.reload();
  await open(page, portrait);
  report.afterReload = {
    regions: await page.locator('#stage .region').count(),
    note: await page.locator('#eyes-only-note').count(),
  };
  await page.getByRole('button', { name: 'Back to all photos' }).click();

  await page.getByRole('button', { name: 'Export selected photos' }).click();
  await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
  report.export = await page.evaluate(async () => {
    const token = document.querySelector('meta[name="photodeid-token"]').content;
    const r = await fetch('/api/export', { headers: { 'X-Photodeid-Token': token } });
    return r.json();
  });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
