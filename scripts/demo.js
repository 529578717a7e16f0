#!/usr/bin/env node
// `npm run demo`: the main job on the built-in default model and the bundled sample data.
// demo-output/ is the demo's own (git-ignored) folder: a previous demo's output is replaced,
// anything else found there is left alone and the demo refuses to run.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'demo-output');
if (fs.existsSync(out)) {
  const entries = fs.readdirSync(out);
  const isPreviousDemo = entries.length === 0 || entries.includes('state.json');
  if (!isPreviousDemo) {
    console.error(`demo: ${out} holds files that are not a previous demo's output; move them away first`);
    process.exit(2);
  }
  fs.rmSync(out, { recursive: true, force: true });
}
const args = [
  path.join(root, 'dist', 'cli.js'), 'search', 'builtin:default',
  '--data', 'sample',
  '--target-macs', '0.5',
  '--pretrain-epochs', '6', '--search-epochs', '4', '--finetune-epochs', '4',
  '--out', out,
  ...process.argv.slice(2),
];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
