import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { inspectModel } from '../../src/engine/inspect';
import { importOnnxModel } from '../../src/engine/onnx';
import { fixturePath, fixtureReference, FIXTURES, nchwToNhwc, relativeError, runOnnx } from '../support/onnx';
import { predictModel, seededValues } from '../support/tensors';

/** Relative tolerance of the issue: float32 sums in another order differ by ~1e-7 of the scale. */
const TOLERANCE = 1e-4;

describe('ONNX import: torchvision models exported by PyTorch', function () {
  this.timeout(120_000);

  for (const name of FIXTURES) {
    describe(name, () => {
      let model: tf.LayersModel;
      before(async () => {
        model = (await importOnnxModel(fixturePath(name))).model;
      });
      after(() => model.dispose());

      it("matches PyTorch's output on the reference input", () => {
        const ref = fixtureReference(name);
        const input = tf.tensor(nchwToNhwc(ref.input, ref.inputShape), [ref.inputShape[0], ref.inputShape[2], ref.inputShape[3], ref.inputShape[1]]);
        const output = predictModel(model, input);
        input.dispose();
        assert.deepEqual(model.outputs[0].shape.slice(1), ref.outputShape.slice(1));
        const error = relativeError(output, ref.output);
        assert.ok(error <= TOLERANCE, `relative error ${error} > ${TOLERANCE}`);
      });

      it('matches onnxruntime on the original file for another input and batch size', async () => {
        const ref = fixtureReference(name);
        const shape = [3, ...ref.inputShape.slice(1)];
        const values = seededValues(shape.reduce((a, b) => a * b, 1), 17);
        const onnx = await runOnnx(fixturePath(name), values, shape);
        const input = tf.tensor(nchwToNhwc(values, shape), [shape[0], shape[2], shape[3], shape[1]]);
        const output = predictModel(model, input);
        input.dispose();
        const error = relativeError(output, onnx.output);
        assert.ok(error <= TOLERANCE, `relative error ${error} > ${TOLERANCE}`);
      });

      it("counts the MACs PyTorch's forward hooks count (conv and linear)", () => {
        const report = inspectModel(model, fixturePath(name));
        assert.equal(report.trainingForm.totalMacs, fixtureReference(name).macsPerImage);
      });
    });
  }

  it('keeps the input shape and class count: [batch, H, W, C] in, [batch, classes] out', async () => {
    const { model, info } = await importOnnxModel(fixturePath('resnet18-slim'));
    assert.deepEqual(model.inputs[0].shape, [null, 32, 32, 3]);
    assert.deepEqual(model.outputs[0].shape, [null, 10]);
    assert.equal(info.inputName, 'input');
    assert.equal(info.outputName, 'logits');
    assert.equal(info.inputBatchDim, 'batch');
    model.dispose();
  });

  it('turns x * sigmoid(x) into one swish activation and Clip(0, 6) into ReLU(6)', async () => {
    const efficientnet = (await importOnnxModel(fixturePath('efficientnet-b0'))).model;
    const classes = efficientnet.layers.map((l) => l.getClassName());
    const swish = efficientnet.layers.filter((l) => l.getClassName() === 'Activation' && (l.getConfig() as any).activation === 'swish');
    assert.ok(swish.length > 0, 'swish activations');
    // Each SE block keeps its Multiply (gate) but no SiLU is left as a Multiply of its own.
    assert.equal(classes.filter((c) => c === 'Multiply').length, classes.filter((c) => c === 'GlobalAveragePooling2D').length - 1);
    efficientnet.dispose();
    const mobilenet = (await importOnnxModel(fixturePath('mobilenetv2'))).model;
    assert.ok(mobilenet.layers.some((l) => l.getClassName() === 'ReLU' && (l.getConfig() as any).maxValue === 6));
    mobilenet.dispose();
  });
});
