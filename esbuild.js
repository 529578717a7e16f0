// One build script for every bundle: the CLI/worker (Node), the extension host (Node, `vscode`
// external), the webview (browser IIFE) and the benchmarks. `--production` minifies, `--watch` rebuilds.
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** Node bundles keep tfjs and the wasm backend external: the wasm backend finds its .wasm files
 * relative to its own package folder, and .vscodeignore ships node_modules/@tensorflow. */
const nodeExternals = [
  'vscode',
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-layers',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
];

function benchEntries() {
  const dir = path.join(__dirname, 'bench');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => path.join('bench', f));
}

const builds = [
  {
    // The data-parallel replica thread sits next to cli.js (src/engine/train/parallel/pool.ts finds it there).
    entryPoints: { cli: 'src/cli/main.ts', replicaWorker: 'src/engine/train/parallel/replicaWorker.ts' },
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  fs.existsSync('src/extension/extension.ts') && {
    entryPoints: { extension: 'src/extension/extension.ts' },
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  fs.existsSync('webview/main.ts') && {
    entryPoints: { webview: 'webview/main.ts' },
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    loader: { '.css': 'css' },
  },
  benchEntries().length > 0 && {
    entryPoints: benchEntries(),
    outdir: 'dist/bench',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
].filter(Boolean);

async function main() {
  // The ONNX schema is read at run time by protobufjs, next to the bundles (src/engine/onnx/schema.ts).
  fs.mkdirSync('dist', { recursive: true });
  fs.copyFileSync('src/engine/onnx/onnx.proto', 'dist/onnx.proto');
  for (const options of builds) {
    const config = {
      bundle: true,
      outdir: options.outdir ?? 'dist',
      sourcemap: !production,
      minify: production,
      logLevel: 'warning',
      ...options,
    };
    if (watch) {
      const ctx = await esbuild.context(config);
      await ctx.watch();
    } else {
      await esbuild.build(config);
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
