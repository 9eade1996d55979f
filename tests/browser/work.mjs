// Work is never lost: drives `photodeid serve` in headless Chromium and
// prints a JSON report on stdout for tests/browser.rs to check.
//
// usage: node work.mjs URL PHASE PHOTO OTHER
//   PHASE "edit":    draw on PHOTO, wait for the autosave, reload (the region
//                    is back), undo/redo, leave with a save pending (the
//                    browser asks), two tabs (a stale write on PHOTO is
//                    refused and shows the other tab's work; OTHER merges).
//   PHASE "restart": after a server restart, the regions are there; export
//                    OTHER alone.
import { chromium } from 'playwright-core';

const [url, phase, photoName, otherName] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const report = { console: [] };

async function open(context) {
  const page = await context.newPage();
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.locator('.card').first().waitFor();
  await page.waitForFunction(() => /saved/.test(document.getElementById('save-status').textContent));
  return page;
}

const card = (page, name) => page.locator(`.card[data-name="${name}"]`);
const marks = (page, name) => card(page, name).locator('.marks').textContent();

async function openEditor(page, name) {
  const n = await page.evaluate(() => window.photodeid.previewsDone);
  await card(page, name).getByRole('button', { name: /Mark regions/ }).click();
  await page.waitForFunction((k) => window.photodeid.previewsDone > k, n);
}

async function draw(page, from, to) {
  const box = await page.locator('#stage-img').boundingBox();
  await page.mouse.move(box.x + box.width * from[0], box.y + box.height * from[1]);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * to[0], box.y + box.height * to[1], { steps: 6 });
  await page.mouse.up();
}

const settled = (page) => page.waitForFunction(() => !window.photodeid.unsaved());
const back = (page) => page.getByRole('button', { name: 'Back to all photos' }).click();

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (phase === 'edit') {
    const page = await open(context);
    report.before = await marks(page, photoName);
    await openEditor(page, photoName);
    await draw(page, [0.2, 0.2], [0.6, 0.6]);
    await settled(page);
    report.saveStatus = await page.locator('#save-status').textContent();
    // Undo and redo, with the keyboard, each saved.
    await page.locator('#stage').focus();
    await page.keyboard.press('Control+z');
    await settled(page);
    report.afterUndo = await page.locator('#stage .region').count();
    await page.keyboard.press('Control+Shift+z');
    await settled(page);
    report.afterRedo = await page.locator('#stage .region').count();
    await page.reload();
    await page.locator('.card').first().waitFor();
    await page.waitForFunction(() => /saved/.test(document.getElementById('save-status').textContent));
    report.afterReload = await marks(page, photoName);
    await openEditor(page, photoName);
    report.regionsAfterReload = await page.locator('#stage .region').count();
    await back(page);

    // Leaving while a save is held back: the browser asks.
    await page.route('**/api/regions', async (route) => {
      if (route.request().method() === 'POST') await new Promise((r) => setTimeout(r, 1500));
      return route.continue();
    });
    await openEditor(page, otherName);
    await page.locator('#add-region').click();
    report.unsavedFlag = await page.evaluate(() => window.photodeid.unsaved());
    let asked = false;
    page.on('dialog', async (d) => {
      if (d.type() === 'beforeunload') asked = true;
      await d.dismiss();
    });
    await page.close({ runBeforeUnload: true });
    // Let the held-back save land (or not) before the tabs below load.
    await new Promise((r) => setTimeout(r, 2500));
    report.askedBeforeLeaving = asked;

    // Two tabs on the same folder.
    const a = await open(context);
    const b = await open(context);
    await openEditor(a, photoName);
    await draw(a, [0.05, 0.05], [0.15, 0.15]);
    await settled(a);
    report.tabA = await a.locator('#stage .region').count();
    // Tab b has not seen a's change (no focus event in headless): its write is stale.
    await openEditor(b, photoName);
    report.tabBBefore = await b.locator('#stage .region').count();
    await b.locator('#stage .region').first().focus();
    await b.keyboard.press('Delete');
    await settled(b);
    report.tabBStatus = await b.locator('#save-status').textContent();
    report.tabBAfter = await b.locator('#stage .region').count();
    await back(b);
    await openEditor(b, otherName);
    await draw(b, [0.5, 0.5], [0.9, 0.9]);
    await settled(b);
    report.tabBOtherStatus = await b.locator('#save-status').textContent();
    report.saved = await b.evaluate(async () => {
      const t = document.querySelector('meta[name="photodeid-token"]').content;
      return (await fetch('/api/regions', { headers: { 'X-Photodeid-Token': t } })).json();
    });
  } else {
    const page = await open(context);
    report.afterRestart = await marks(page, photoName);
    report.otherAfterRestart = await marks(page, otherName);
    // Export the other photo alone.
    await page.getByRole('button', { name: 'Select none' }).click();
    await card(page, otherName).getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Export selected photos' }).click();
    await page.locator('#results h3', { hasText: 'Done' }).waitFor({ timeout: 60000 });
    report.exported = await page.locator('#results tbody tr').count();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
