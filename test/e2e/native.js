/**
 * e2e case of the native backend (issue 15), called by run.js:
 *
 *   const nativeEnv = native.prepare(tmp);   // before code-server starts: env for the extension host
 *   await native.run({ page, test, ... });   // with run.js's helpers
 *
 * The real @tensorflow/tfjs-node cannot install here (its install downloads libtensorflow), so
 * `prepare` packs the stand-in (test/support/native-stand-in.js: cpu kernels registered as the
 * 'tensorflow' backend) and points PAS_NATIVE_PACKAGE_SOURCE at it; "PaS: Set Up Native Backend"
 * then installs that tarball with npm, offline, exactly as it would install the registry package.
 * The case ends with the sample search's panel showing `backend: node`, then removes the install so
 * later cases run on wasm again.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { buildStandInTarball } = require('../support/native-stand-in');

const ROOT = path.resolve(__dirname, '..', '..');

/** Packs the stand-in CPU package; returns the environment code-server (and so the extension host) needs. */
function prepare(tmp) {
  const dir = path.join(tmp, 'native-stand-ins');
  fs.mkdirSync(dir, { recursive: true });
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs', 'package.json'), 'utf8')).version;
  buildStandInTarball({ workDir: dir, packageName: '@tensorflow/tfjs-node', version });
  return { PAS_NATIVE_PACKAGE_SOURCE: dir };
}

/**
 * @param {{ page: any, test: Function, log: Function, waitFor: Function, sleep: Function, shot: Function,
 *   commandPalette: Function, answerQuickInput: Function, webviewFrame: Function, notificationText: Function,
 *   clearNotifications: Function }} h run.js's page and helpers
 */
async function run(h) {
  const { page } = h;
  await h.test('Set Up Native Backend (stand-in package): the sample search panel shows the native backend', page, async () => {
    await h.clearNotifications(page);
    await h.commandPalette(page, 'PaS: Set Up Native Backend');
    await h.answerQuickInput(page, '', { pick: 'CPU (native TensorFlow' });
    const text = await h.waitFor(async () => {
      const t = await h.notificationText(page);
      return /is installed|was not installed|npm was not found|cannot install/.test(t) ? t : undefined;
    }, 'the native backend installation', 240_000);
    await h.shot(page, 'native-installed');
    h.log(`notification: ${text.replace(/\s+/g, ' ').slice(0, 200)}`);
    if (!/@tensorflow\/tfjs-node is installed/.test(text)) throw new Error(`installation failed: ${text}`);

    try {
      await h.clearNotifications(page);
      // The sample starts at once with the settings' defaults (no prompts since the setup form).
      await h.commandPalette(page, 'PaS: Try PaS on a Sample Model');
      const frame = await h.webviewFrame(page, '[data-testid=backend][data-backend=node]', 180_000);
      await h.sleep(500);
      await h.shot(page, 'native-panel');
      const shown = await frame.locator('[data-testid=backend-name]').innerText();
      h.log(`panel: ${shown}`);
      if (shown.trim() !== 'backend: node') throw new Error(`panel shows "${shown}"`);
      if ((await frame.locator('[data-testid=set-up-native]').count()) !== 0) throw new Error('the panel offers the set-up although the run is native');
      // The stand-in computes with the pure-JS cpu kernels: stop the run instead of waiting for it.
      if ((await frame.locator('[data-testid=status]').innerText()) === 'running') {
        await frame.locator('[data-testid=cancel]').click();
        await h.waitFor(async () => (await frame.locator('[data-testid=status]').innerText()) !== 'running', 'the native search to stop', 120_000, 250);
      }
    } finally {
      await h.clearNotifications(page);
      await h.commandPalette(page, 'PaS: Remove Native Backend');
      await h.waitFor(async () => /removed @tensorflow\/tfjs-node/.test(await h.notificationText(page)), 'the removal', 30_000);
    }
  });
}

module.exports = { prepare, run };
