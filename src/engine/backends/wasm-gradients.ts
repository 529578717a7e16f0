/**
 * Makes the wasm backend able to train conv nets, and fast at it: registers the gradient kernels
 * tfjs-backend-wasm 4.22 lacks, gets wrong (MaxPoolGrad, Select on bool) or implements as slow
 * scalar loops, cheaper BatchNorm and ClipByValue gradients, and a forward convolution that
 * packs no filter while training.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormForwardKernel } from './batchnorm-forward';
import { installBatchNormMovingAverages } from './batchnorm-moving-averages';
import { batchNormTrainingKernels, installBatchNormTrainingGradient } from './batchnorm-training';
import { channelBroadcastKernels } from './channel-broadcast-kernels';
import { clipGradientKernel, installWasmClipGradient } from './clip-gradient';
import { installWasmBatchNormGradients } from './batchnorm-gradient';
import { conv2DGradientKernels } from './conv2d-gradients';
import { forwardConvKernels } from './conv2d-forward';
import { copyFreeKernels } from './copy-free-kernels';
import { depthwiseGradientKernels } from './depthwise-gradients';
import { fastTileKernel } from './fast-tile';
import { leadingAxisReductionKernels } from './leading-axis-reductions';
import { transposeFreeBatchMatMulKernel } from './matmul-transposes';
import { safeSelectKernel } from './select-kernel';
import { maxPoolGradKernel } from './max-pool-gradient';

let registered = false;

function stockKernel(kernelName: string): tf.KernelFunc {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (!kernel) throw new Error(`the wasm backend has no '${kernelName}' kernel to wrap`);
  return kernel.kernelFunc;
}

/**
 * Registers the wasm training kernels and gradients (idempotent). Call once the wasm backend is
 * initialized: the stock kernels we fall back to must have run their setup.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const kernels = [
    ...conv2DGradientKernels(),
    ...forwardConvKernels(stockKernel('Conv2D'), stockKernel('FusedConv2D')),
    ...depthwiseGradientKernels(),
    fastTileKernel(),
    clipGradientKernel(),
    maxPoolGradKernel(),
    ...copyFreeKernels(stockKernel('Cast'), stockKernel('Slice')),
    batchNormForwardKernel(stockKernel('FusedBatchNorm')),
    ...batchNormTrainingKernels(),
    transposeFreeBatchMatMulKernel(stockKernel('BatchMatMul')),
    safeSelectKernel(stockKernel('Select')),
    ...leadingAxisReductionKernels(stockKernel('Sum'), stockKernel('Mean')),
    ...channelBroadcastKernels({ Add: stockKernel('Add'), Sub: stockKernel('Sub'), Multiply: stockKernel('Multiply') }),
  ];
  for (const config of kernels) {
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  installWasmBatchNormGradients();
  installBatchNormTrainingGradient();
  installWasmClipGradient();
  installBatchNormMovingAverages();
  registered = true;
}
