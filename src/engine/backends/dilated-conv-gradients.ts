/**
 * Gradients of dilated (atrous) convolutions, which tfjs 4.22 refuses ("dilation rates greater than
 * 1 are not yet supported in gradients") for Conv2D, DepthwiseConv2dNative and fused conv2d.
 *
 * A convolution with dilation d is the convolution (dilation 1) with the "spread" filter that has
 * d - 1 zero taps between its taps, with the same padding (tfjs pads by the effective filter size
 * (k - 1) * d + 1 either way). So:
 *   dx = backprop-input of the spread filter, and
 *   dW = every d-th tap of the backprop-filter for the spread filter's shape.
 * Both run through the backend's own (non-dilated) backprop kernels, so this works on every
 * backend (cpu, wasm with our kernels, native). Dilation 1 goes to the stock gradient untouched.
 *
 * tfjs-layers runs Conv2D layers through `tf.fused.conv2d`, whose gradient is a closure that
 * cannot be re-registered; for a linear dilated conv under a gradient tape it is replaced by the
 * unfused conv2d (+ bias), whose gradient is the one registered here. Fused non-linear
 * activations are already unfused by tfjs while gradients are recorded.
 */
import * as tf from '@tensorflow/tfjs';

type Pair = [number, number];
type PadAttr = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type GradFunc = tf.GradConfig['gradFunc'];

interface ConvAttrs {
  strides: number | Pair;
  pad: PadAttr;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | Pair;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function asPair(value: number | Pair | undefined): Pair {
  if (value === undefined || value === null) return [1, 1];
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

function isDilated(dilations: number | Pair | undefined): boolean {
  const [dh, dw] = asPair(dilations);
  return dh > 1 || dw > 1;
}

/**
 * Puts d - 1 zero rows between the taps along `axis` (0 = height, 1 = width) of a [kh, kw, a, b]
 * filter: [k] taps become (k - 1) * d + 1. Done in rank <= 4 so every backend's Pad runs it.
 */
function spreadAxis(filter: tf.Tensor4D, axis: 0 | 1, rate: number): tf.Tensor4D {
  if (rate === 1) return filter;
  const [kh, kw, a, b] = filter.shape;
  const taps = axis === 0 ? kh : kw;
  const outer = axis === 0 ? 1 : kh;
  const inner = (axis === 0 ? kw : 1) * a * b;
  const padded = tf.pad(tf.reshape(filter, [outer, taps, 1, inner]), [[0, 0], [0, 0], [0, rate - 1], [0, 0]]);
  const spreadTaps = (taps - 1) * rate + 1;
  const sliced = tf.slice(tf.reshape(padded, [outer, taps * rate, inner]), [0, 0, 0], [outer, spreadTaps, inner]);
  return tf.reshape(sliced, axis === 0 ? [spreadTaps, kw, a, b] : [kh, spreadTaps, a, b]);
}

/** The filter of the equivalent non-dilated convolution. */
export function spreadFilter(filter: tf.Tensor4D, dilations: number | Pair): tf.Tensor4D {
  const [dh, dw] = asPair(dilations);
  return spreadAxis(spreadAxis(filter, 0, dh), 1, dw);
}

/** The taps of a spread filter's gradient that belong to real filter taps. */
function gatherTaps(spreadGradient: tf.Tensor4D, dilations: number | Pair): tf.Tensor4D {
  const [dh, dw] = asPair(dilations);
  return tf.stridedSlice(spreadGradient, [0, 0, 0, 0], spreadGradient.shape, [dh, dw, 1, 1]) as tf.Tensor4D;
}

function conv2DGradient(stock: GradFunc): GradFunc {
  return (dy, saved, attrs) => {
    const convAttrs = attrs as unknown as ConvAttrs;
    if (!isDilated(convAttrs.dilations)) return stock(dy, saved, attrs);
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const { strides, pad, dataFormat = 'NHWC', dimRoundingMode } = convAttrs;
    const spread = spreadFilter(filter, convAttrs.dilations as number | Pair);
    return {
      x: () =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy: dy as tf.Tensor, filter: spread }, {
          strides, pad, dataFormat, dimRoundingMode, inputShape: x.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      filter: () =>
        gatherTaps(
          tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: dy as tf.Tensor }, {
            strides, pad, dataFormat, dimRoundingMode, filterShape: spread.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor4D,
          convAttrs.dilations as number | Pair,
        ),
    };
  };
}

function depthwiseGradient(stock: GradFunc): GradFunc {
  return (dy, saved, attrs) => {
    const convAttrs = attrs as unknown as ConvAttrs;
    if (!isDilated(convAttrs.dilations)) return stock(dy, saved, attrs);
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const { strides, pad, dimRoundingMode } = convAttrs;
    const spread = spreadFilter(filter, convAttrs.dilations as number | Pair);
    return {
      x: () =>
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: dy as tf.Tensor, filter: spread }, {
          strides, pad, dilations: 1, dimRoundingMode, inputShape: x.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      filter: () =>
        gatherTaps(
          tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: dy as tf.Tensor }, {
            strides, pad, dilations: 1, dimRoundingMode, filterShape: spread.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor4D,
          convAttrs.dilations as number | Pair,
        ),
    };
  };
}

type FusedConv2dArgs = Parameters<typeof tf.fused.conv2d>[0];

function unfusedWhileRecordingDilated(stock: typeof tf.fused.conv2d): typeof tf.fused.conv2d {
  const wrapped = (args: FusedConv2dArgs) => {
    const linear = args.activation === undefined || args.activation === null || args.activation === 'linear';
    if (!linear || !isDilated(args.dilations) || (args.dataFormat ?? 'NHWC') !== 'NHWC' || tf.engine().state.gradientDepth === 0) {
      return stock(args);
    }
    const y = tf.conv2d(args.x as tf.Tensor4D, args.filter as tf.Tensor4D, args.strides, args.pad, 'NHWC', args.dilations, args.dimRoundingMode);
    return args.bias === undefined || args.bias === null ? y : tf.add(y, args.bias);
  };
  return wrapped as typeof tf.fused.conv2d;
}

let installed = false;

/** Registers the dilated gradients (all backends; the registry is global). Idempotent. */
export function installDilatedConvGradients(): void {
  if (installed) return;
  for (const [kernelName, wrap] of [
    ['Conv2D', conv2DGradient],
    ['DepthwiseConv2dNative', depthwiseGradient],
  ] as const) {
    const stock = tf.getGradient(kernelName);
    tf.registerGradient({ ...stock, gradFunc: wrap(stock.gradFunc) });
  }
  // tf.fused is a plain mutable namespace object shared with tfjs-layers (read at call time).
  const fused = tf.fused as { conv2d: typeof tf.fused.conv2d };
  fused.conv2d = unfusedWhileRecordingDilated(fused.conv2d);
  installed = true;
}
