import { strict as assert } from 'assert';
import * as path from 'path';
import { KERNELS_WASM_BASE64 } from '../../src/engine/backends/simd/kernelsWasm';
import { FLAT_MOMENTUM_WASM_BASE64 } from '../../src/engine/backends/simd/flatMomentumWasm';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { compileKernels, compileModule } = require(path.join(__dirname, '..', '..', 'scripts', 'build-simd-kernels.js')) as {
  compileKernels: () => Promise<Buffer>;
  compileModule: (name: string) => Promise<Buffer>;
};

describe('SIMD kernels module (src/engine/backends/simd)', () => {
  it('kernelsWasm.ts is kernels.wat compiled (rerun scripts/build-simd-kernels.js after editing the .wat)', async () => {
    const fresh = await compileKernels();
    assert.equal(KERNELS_WASM_BASE64, fresh.toString('base64'));
  });

  it('flatMomentumWasm.ts is flatMomentum.wat compiled', async () => {
    const fresh = await compileModule('flatMomentum');
    assert.equal(FLAT_MOMENTUM_WASM_BASE64, fresh.toString('base64'));
  });

  it('the momentum module imports only a memory and exports the step FlatVectors binds', () => {
    const module = new WebAssembly.Module(Buffer.from(FLAT_MOMENTUM_WASM_BASE64, 'base64'));
    assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    assert.deepEqual(WebAssembly.Module.exports(module).map((e) => e.name), ['momentumStep']);
  });

  it('the module imports only the backend heap and exports the kernels SimdKernels declares', () => {
    const module = new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
    assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    assert.deepEqual(WebAssembly.Module.exports(module).map((e) => e.name).sort(), ['channelAffine', 'channelSums', 'channelsLastPatches', 'clipGradient', 'columnsToImage', 'depthwiseInputGradient', 'depthwiseTapGradient', 'directCorrelation', 'directFilterGradient', 'doublesToFloats', 'transposedPatches']);
  });
});
