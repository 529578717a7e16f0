import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PasInputError } from '../../src/engine/errors';
import { loadModelSource } from '../../src/engine/model';
import { modelProto } from '../../src/engine/onnx/schema';
import { makeTempDir, runCli } from '../support/cli';
import { fixturePath } from '../support/onnx';

/** The resnet fixture, decoded, changed by `edit`, and written as `name` in `dir`. */
function editedFixture(dir: string, name: string, edit: (model: any) => void): string {
  const type = modelProto();
  const model: any = type.toObject(type.decode(fs.readFileSync(fixturePath('resnet18-slim'))), { bytes: Buffer, longs: Number });
  edit(model);
  const file = path.join(dir, name);
  fs.writeFileSync(file, type.encode(type.fromObject(model)).finish());
  return file;
}

async function expectRefused(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadModelSource(file), (error: unknown) => {
    assert.ok(error instanceof PasInputError, `not a PasInputError: ${error}`);
    assert.equal(error.file, file);
    assert.match(error.reason, pattern);
    return true;
  });
}

describe('hostile and unsupported .onnx files', function () {
  this.timeout(120_000);
  let work: string;
  before(() => {
    work = makeTempDir('pas-onnx-hostile-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('truncated file: exit 2, one line naming the file, nothing written', () => {
    const file = path.join(work, 'truncated.onnx');
    fs.writeFileSync(file, fs.readFileSync(fixturePath('resnet18-slim')).subarray(0, 5000));
    const out = path.join(work, 'out-truncated');
    const result = runCli(['reparam', file, '--out', out, '--backend', 'cpu']);
    assert.equal(result.status, 2);
    const lines = result.stderr.trim().split('\n').filter((l) => l.startsWith('pas:'));
    assert.equal(lines.length, 1);
    assert.match(lines[0], new RegExp(`^pas: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not an ONNX model`));
    assert.ok(!fs.existsSync(out));
  });

  it('another format under an .onnx name (JSON text, PNG bytes) is not an ONNX model', async () => {
    const json = path.join(work, 'json.onnx');
    fs.writeFileSync(json, JSON.stringify({ modelTopology: {} }));
    await expectRefused(json, /not an ONNX model/);
    const png = path.join(work, 'png.onnx');
    fs.writeFileSync(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 73, 72, 68, 82]));
    await expectRefused(png, /not an ONNX model/);
  });

  it('external data outside the model folder is never read', async () => {
    const secret = path.join(work, 'secret.bin');
    fs.writeFileSync(secret, Buffer.alloc(4096));
    const dir = fs.mkdtempSync(path.join(work, 'models-'));
    const file = editedFixture(dir, 'escape.onnx', (model) => {
      const init = model.graph.initializer[0];
      delete init.raw_data;
      init.data_location = 1;
      init.external_data = [{ key: 'location', value: '../secret.bin' }];
    });
    await expectRefused(file, /external data '\.\.\/secret\.bin' outside the model's folder/);
    const absolute = editedFixture(dir, 'absolute.onnx', (model) => {
      const init = model.graph.initializer[0];
      delete init.raw_data;
      init.data_location = 1;
      init.external_data = [{ key: 'location', value: secret }];
    });
    await expectRefused(absolute, /outside the model's folder/);
  });

  it('huge declared dims are refused before any allocation', async () => {
    const file = editedFixture(work, 'huge.onnx', (model) => {
      model.graph.initializer[0].dims = [1e9, 1e9, 3, 3];
    });
    await expectRefused(file, /declares shape \[1000000000, 1000000000, 3, 3\]/);
  });

  it('data shorter than the declared shape is refused', async () => {
    const file = editedFixture(work, 'short.onnx', (model) => {
      model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data.subarray(0, 8);
    });
    await expectRefused(file, /has 8 bytes of data, but shape/);
  });

  it('NaN weights are refused naming the tensor', async () => {
    const file = editedFixture(work, 'nan.onnx', (model) => {
      const raw = Buffer.from(model.graph.initializer[0].raw_data);
      raw.writeFloatLE(NaN, 4);
      model.graph.initializer[0].raw_data = raw;
    });
    await expectRefused(file, new RegExp(`tensor '.*' holds NaN at index 1`));
  });

  it('an operator PaS does not convert is named with its node', async () => {
    const file = editedFixture(work, 'lstm.onnx', (model) => {
      const relu = model.graph.node.find((n: any) => n.op_type === 'Relu');
      relu.op_type = 'Erf';
    });
    await expectRefused(file, /ONNX node '\/relu\/Relu' \(Erf\): operator Erf is not supported/);
  });

  it('a grouped convolution whose weight does not fit its groups is refused naming the node', async () => {
    // The 8 -> 8 conv's weight is [8, 8, 3, 3]: with 2 groups it would read 16 input channels.
    const file = editedFixture(work, 'grouped.onnx', (model) => {
      const conv = model.graph.node.find((n: any) => n.name === '/layer1/layer1.0/conv1/Conv');
      conv.attribute.find((a: any) => a.name === 'group').i = 2;
    });
    await expectRefused(file, /ONNX node '\/layer1\/layer1\.0\/conv1\/Conv' \(Conv\): weight expects 16 input channels, the input has 8/);
  });

  it('a mean over the channels (not global pooling) is refused naming the node', async () => {
    const file = editedFixture(work, 'channel-mean.onnx', (model) => {
      const pool = model.graph.node.find((n: any) => n.op_type === 'GlobalAveragePool');
      pool.op_type = 'ReduceMean';
      pool.attribute = [{ name: 'axes', type: 7, ints: [1] }];
    });
    await expectRefused(file, /\(ReduceMean\): ReduceMean over axes \[1\] of a feature map; PaS converts the mean or max over the spatial axes \[2, 3\]/);
  });

  it('ceil_mode pooling that needs padding TF cannot express is refused; after a ReLU it is converted', async () => {
    const ceilMode = (model: any) => model.graph.node.find((n: any) => n.name === '/maxpool/MaxPool').attribute.push({ name: 'ceil_mode', type: 2, i: 1 });
    // 16x16, 3x3 stride 2, pads 1: ceil_mode adds a ninth window, i.e. pads [1, 2], not TF's [0, 1].
    const afterTanh = editedFixture(work, 'ceil-tanh.onnx', (model) => {
      ceilMode(model);
      model.graph.node.find((n: any) => n.name === '/relu/Relu').op_type = 'Tanh';
    });
    await expectRefused(afterTanh, /\(MaxPool\): ceil_mode=1 adds a partial window .*padding \[1, 2; 1, 2\] of a max pool of values that may be negative/);
    const afterRelu = editedFixture(work, 'ceil-relu.onnx', ceilMode);
    const { model } = await loadModelSource(afterRelu);
    const pool = model.layers.find((l) => l.getClassName() === 'MaxPooling2D')!;
    assert.deepEqual(pool.outputShape, [null, 9, 9, 8]);
    model.dispose();
  });

  it('a Transpose that is not a channel shuffle is refused naming the node', async () => {
    const type = modelProto();
    const model: any = type.toObject(type.decode(fs.readFileSync(fixturePath('shufflenet-tiny'))), { bytes: Buffer, longs: Number });
    const transpose = model.graph.node.find((n: any) => n.op_type === 'Transpose');
    transpose.attribute.find((a: any) => a.name === 'perm').ints = [0, 1, 2, 4, 3];
    const file = path.join(work, 'not-a-shuffle.onnx');
    fs.writeFileSync(file, type.encode(type.fromObject(model)).finish());
    await expectRefused(file, /\(Transpose\): transpose with perm \[0, 1, 2, 4, 3\]; PaS converts only a channel shuffle's transpose/);
  });

  it('a Sub of two activations (not input normalization) is refused naming the node', async () => {
    const file = editedFixture(work, 'sub.onnx', (model) => {
      const add = model.graph.node.find((n: any) => n.op_type === 'Add');
      add.op_type = 'Sub';
    });
    await expectRefused(file, /\(Sub\): Sub of an activation by something other than a constant per-channel or scalar value/);
  });

  it('a model with two inputs is refused', async () => {
    const file = editedFixture(work, 'two-inputs.onnx', (model) => {
      model.graph.input.push({ ...model.graph.input[0], name: 'second' });
    });
    await expectRefused(file, /has 2 inputs; PaS needs one image input/);
  });
});
