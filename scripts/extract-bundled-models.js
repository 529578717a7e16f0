#!/usr/bin/env node
/**
 * Turns the TF.js Layers models that nsfwjs bundles as JavaScript modules (dist/models/NAME/
 * model.min.js holding the model.json object, group1-shardKofN.min.js each holding one weight
 * shard as base64) back into the files the Keras converter wrote: NAME/model.json and its shards.
 *
 * The modules are evaluated in an empty vm context (no require, no process, a time limit), so the
 * package's code cannot reach this machine; only Layers models (a Keras model_config) are kept.
 *
 * Usage: node scripts/extract-bundled-models.js PACKAGE_MODELS_DIR DEST_DIR NAME...
 */
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

function evaluateModule(file) {
  const module = { exports: {} };
  vm.runInNewContext(fs.readFileSync(file, 'utf8'), { module, exports: module.exports }, { timeout: 120_000, filename: file });
  return module.exports;
}

function extract(modelsDir, destDir, name) {
  const source = path.join(modelsDir, name);
  const model = evaluateModule(path.join(source, 'model.min.js'));
  const topology = model && model.modelTopology;
  const kerasModel = topology && (topology.model_config || topology);
  if (!kerasModel || !['Model', 'Functional', 'Sequential'].includes(kerasModel.class_name)) {
    throw new Error(`${source}: not a Layers model (no Keras model_config)`);
  }
  const target = path.join(destDir, name);
  fs.rmSync(target, { recursive: true, force: true });
  fs.mkdirSync(target, { recursive: true });
  let bytes = 0;
  for (const group of model.weightsManifest) {
    for (const shard of group.paths) {
      if (path.basename(shard) !== shard) throw new Error(`${source}: shard path '${shard}' is not a plain file name`);
      const base64 = evaluateModule(path.join(source, `${shard}.min.js`));
      if (typeof base64 !== 'string') throw new Error(`${source}/${shard}.min.js: not a base64 string`);
      const data = Buffer.from(base64, 'base64');
      fs.writeFileSync(path.join(target, shard), data);
      bytes += data.length;
    }
  }
  const modelJson = { format: 'layers-model', generatedBy: `keras v${topology.keras_version || '?'}`, convertedBy: 'nsfwjs bundle (scripts/extract-bundled-models.js)', modelTopology: topology, weightsManifest: model.weightsManifest };
  fs.writeFileSync(path.join(target, 'model.json'), JSON.stringify(modelJson));
  const layers = kerasModel.config.layers || kerasModel.config;
  process.stdout.write(`${target}: ${layers.length} layers, ${(bytes / 1e6).toFixed(1)} MB of weights\n`);
}

const [modelsDir, destDir, ...names] = process.argv.slice(2);
if (!modelsDir || !destDir || names.length === 0) {
  process.stderr.write('usage: node scripts/extract-bundled-models.js PACKAGE_MODELS_DIR DEST_DIR NAME...\n');
  process.exit(2);
}
for (const name of names) extract(modelsDir, destDir, name);
