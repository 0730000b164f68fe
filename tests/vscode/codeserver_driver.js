// Drives a running code-server (real VS Code workbench) in headless Chromium with playwright-core,
// as a person would: quick-open a file, go to a line (and, for a selection, hold Shift and press
// Down over the lines to select), Ctrl+. for the code actions, pick the wanted one, wait for the
// editor text to change. Used by test_vscode_codeserver.py.
//
//   node codeserver_driver.js URL SHOT_DIR
//   env: PLAYWRIGHT_CORE (path of the playwright-core package), CHROMIUM (browser binary),
//        SPEEDSMITH_FILE (file to open, default stats.py), SPEEDSMITH_LINE (1-based line to go
//        to, default 5), SPEEDSMITH_SELECT_DOWN (Shift+Down presses from there, default 0: a
//        cursor, no selection), SPEEDSMITH_ACTION (the code action's title, default
//        "Optimize sum_of_squares"), SPEEDSMITH_EXPECT (a line the edited function must show),
//        SPEEDSMITH_WAIT_MS
// Prints one JSON object on stdout: {ok, error, before, after, dirty, titles, selection,
// seconds, steps}: titles are the rows of the code action menu, selection the status bar's
// cursor item when the action was picked ("Ln 8, Col 1 (73 selected)").
'use strict';

const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const [url, shots] = process.argv.slice(2);
const expect = process.env.SPEEDSMITH_EXPECT || 'return sum([x * x for x in nums])';
const file = process.env.SPEEDSMITH_FILE || 'stats.py';
const line = Number(process.env.SPEEDSMITH_LINE || 5);
const selectDown = Number(process.env.SPEEDSMITH_SELECT_DOWN || 0);
const action = process.env.SPEEDSMITH_ACTION || 'Optimize sum_of_squares';
const waitMs = Number(process.env.SPEEDSMITH_WAIT_MS || 90000);
const t0 = Date.now();
const steps = [];
const step = (what) => {
  const line = `${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`;
  steps.push(line);
  console.error(line);
};

const LINES = '.editor-instance .monaco-editor .view-lines';
const CURSOR_STATUS = '[id="status.editor.selection"]';

async function editorText(page) {
  // Monaco renders one div per visible line; the file is short enough to be all visible.
  return page.evaluate((sel) => {
    const root = document.querySelector(sel);
    if (!root) return '';
    const rows = [...root.children].map((el) => ({
      top: parseFloat(el.style.top || '0'),
      text: el.textContent.replace(/\u00a0/g, ' '),
    }));
    rows.sort((a, b) => a.top - b.top);
    return rows.map((r) => r.text).join('\n');
  }, LINES);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const result = { ok: false, error: null, steps };
  try {
    await page.goto(url);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    await page.waitForSelector('.explorer-folders-view', { timeout: 60000 });
    step('workbench up');

    await page.keyboard.press('Control+P');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 20000 });
    await page.keyboard.type(file);
    await page.waitForSelector('.quick-input-list .monaco-list-row', { timeout: 20000 });
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.textContent.replace(/\u00a0/g, ' ').includes('def '),
      LINES,
      { timeout: 20000 },
    );
    step(`${file} open`);
    result.before = await editorText(page);
    await page.screenshot({ path: `${shots}/1-open.png` });

    // The extension starts the server on activation; until it answers, Ctrl+. shows nothing
    // from speedsmith, so try again for a while.
    let found = false;
    for (let attempt = 0; attempt < 40 && !found; attempt++) {
      await page.locator(LINES).first().click();
      await page.keyboard.press('Control+G');
      await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 10000 });
      await page.keyboard.type(String(line));
      await page.keyboard.press('Enter'); // the cursor at column 1 of that line
      await page.waitForSelector('.quick-input-widget', { state: 'hidden', timeout: 10000 });
      for (let i = 0; i < selectDown; i++) await page.keyboard.press('Shift+ArrowDown');
      if (selectDown > 0) {
        const row = line + selectDown;
        await page.waitForFunction(
          ([sel, at]) => (document.querySelector(sel)?.textContent || '').includes(at),
          [CURSOR_STATUS, `Ln ${row}, Col 1 (`],
          { timeout: 10000 },
        );
      }
      await page.keyboard.press('Control+.');
      const item = page.locator('.action-widget .monaco-list-row', { hasText: action }).first();
      try {
        await item.waitFor({ state: 'visible', timeout: 3000 });
        found = true;
        step(`code action listed (attempt ${attempt + 1})`);
        result.titles = (await page.locator('.action-widget .monaco-list-row').allTextContents()).map(
          (t) => t.trim(),
        );
        result.selection = (await page.locator(CURSOR_STATUS).textContent().catch(() => null))?.trim();
        await page.screenshot({ path: `${shots}/2-actions.png` });
        await item.click();
      } catch {
        await page.keyboard.press('Escape');
        await page.waitForTimeout(1000);
      }
    }
    if (!found) throw new Error(`Ctrl+. never listed "${action}"`);

    await page.waitForFunction(
      ([sel, text]) =>
        document.querySelector(sel)?.textContent.replace(/\u00a0/g, ' ').includes(text),
      [LINES, expect],
      { timeout: waitMs },
    );
    step('edit applied');
    result.after = await editorText(page);
    // The edit goes into the buffer (workspace/applyEdit): the tab turns dirty.
    result.dirty = await page
      .waitForSelector('.tabs-container .tab.active.dirty', { timeout: 5000 })
      .then(() => true)
      .catch(() => false);
    await page.screenshot({ path: `${shots}/3-edited.png` });
    result.ok = true;
  } catch (err) {
    result.error = String((err && err.stack) || err);
    result.after = await editorText(page).catch(() => null);
    await page.screenshot({ path: `${shots}/fail.png` }).catch(() => {});
  } finally {
    result.seconds = (Date.now() - t0) / 1000;
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack) }) + '\n');
  process.exit(1);
});
