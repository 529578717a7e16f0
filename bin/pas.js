#!/usr/bin/env node
// The `pas` command: a thin launcher for the bundled CLI (built by `npm install` via `prepare`).
const { main } = require('../dist/cli.js');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
