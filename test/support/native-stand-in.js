/**
 * Builds stand-ins for @tensorflow/tfjs-node and @tensorflow/tfjs-node-gpu, whose real install
 * downloads libtensorflow (impossible on our machines). A stand-in is an npm tarball with the real
 * package's name and the engine's tfjs version that registers a backend named like the real one
 * ('tensorflow') whose kernels are the cpu backend's, counting every call. At exit it writes a
 * report (calls, gradient-kernel calls, the tfjs-core copies loaded) to $PAS_STAND_IN_REPORT.
 *
 * Like the real package it requires `@tensorflow/tfjs` and `@tensorflow/tfjs-core`, and it bundles
 * decoy copies of them that throw when loaded: if the worker failed to make the native package
 * share the engine's tfjs, loading the stand-in fails and the test sees why.
 *
 * Plain JavaScript so that the mocha suite and the e2e runner (plain Node) can both use it.
 */
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const INDEX_JS = `'use strict';
// Test stand-in for the native TensorFlow.js package: cpu kernels under the name 'tensorflow'.
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-core');
const { MathBackendCPU } = require('@tensorflow/tfjs-backend-cpu');

let calls = 0;
let gradientCalls = 0;
tf.registerBackend('tensorflow', () => {
  const backend = new MathBackendCPU();
  // like the real NodeJSKernelBackend; PAS_STAND_IN_NO_GPU=1 plays a machine without a usable GPU
  backend.isUsingGpuDevice = require('./package.json').name.endsWith('-gpu') && process.env.PAS_STAND_IN_NO_GPU !== '1';
  return backend;
}, 3);
for (const kernel of tf.getKernelsForBackend('cpu')) {
  const isGradient = /Backprop|Grad/.test(kernel.kernelName);
  tf.registerKernel({
    ...kernel,
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      calls += 1;
      if (isGradient) gradientCalls += 1;
      return kernel.kernelFunc(args);
    },
  });
}

process.on('exit', () => {
  const reportFile = process.env.PAS_STAND_IN_REPORT;
  if (!reportFile) return;
  const coreCopies = new Set();
  for (const file of Object.keys(require.cache)) {
    const match = /^(.*[\\\\/]node_modules[\\\\/]@tensorflow[\\\\/]tfjs-core)[\\\\/]/.exec(file);
    if (match) coreCopies.add(match[1]);
  }
  fs.writeFileSync(reportFile, JSON.stringify({
    package: require('./package.json').name,
    calls,
    gradientCalls,
    backend: tf.getBackend(),
    tfjsCoreCopies: [...coreCopies],
  }));
});
module.exports = tf;
`;

const BROKEN_INDEX_JS = `'use strict';
// Test stand-in for a native package whose binary cannot load (what a missing libtensorflow looks like).
throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');
`;

const DECOY_NAMES = ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu'];

function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Writes the stand-in's package folder under `workDir` and packs it with `npm pack`; returns the
 * tarball path. The tarball is named like npm names the real one (tensorflow-tfjs-node-gpu-4.22.0.tgz).
 * @param {{ workDir: string, packageName: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu', version: string, broken?: boolean }} options
 */
function buildStandInTarball({ workDir, packageName, version, broken = false }) {
  const folder = path.join(workDir, `${packageName.replace('@', '').replace('/', '-')}${broken ? '-broken' : ''}`);
  fs.rmSync(folder, { recursive: true, force: true });
  const dependencies = Object.fromEntries(DECOY_NAMES.map((name) => [name, version]));
  writeJson(path.join(folder, 'package.json'), {
    name: packageName,
    version,
    description: 'test stand-in for the native TensorFlow.js package (cpu kernels, counted)',
    main: 'index.js',
    license: 'MIT',
    dependencies,
    bundleDependencies: DECOY_NAMES,
  });
  fs.writeFileSync(path.join(folder, 'index.js'), broken ? BROKEN_INDEX_JS : INDEX_JS);
  for (const name of DECOY_NAMES) {
    const decoy = path.join(folder, 'node_modules', ...name.split('/'));
    writeJson(path.join(decoy, 'package.json'), { name, version, main: 'index.js', license: 'MIT' });
    fs.writeFileSync(
      path.join(decoy, 'index.js'),
      `throw new Error('a second copy of ${name} was loaded from ' + __dirname + ': the native package does not share the engine\\'s tfjs');\n`,
    );
  }
  // Packed in a folder of its own: a broken and a working stand-in get the same name from npm pack.
  const packDir = `${folder}-pack`;
  fs.rmSync(packDir, { recursive: true, force: true });
  fs.mkdirSync(packDir);
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: folder, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  const tarball = path.join(workDir, broken ? packed.replace(/\.tgz$/, '-broken.tgz') : packed);
  fs.renameSync(path.join(packDir, packed), tarball);
  fs.rmSync(packDir, { recursive: true, force: true });
  return tarball;
}

/** Installs a tarball into `dir` the way the extension's command does, but offline. */
function installTarball(tarball, dir) {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['install', tarball, '--prefix', dir, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

module.exports = { buildStandInTarball, installTarball };
