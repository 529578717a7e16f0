/**
 * Pixel-level conversions on plain arrays (channel count, size), done in JS rather than with
 * tensors so that loading tens of thousands of small images needs no tensor bookkeeping and
 * gives the same result on every tfjs backend.
 */

/** Channels per pixel of a decoded image or of the model input. */
export type ChannelCount = 1 | 3 | 4;

// ITU-R BT.601 luma weights, the ones PIL and tf.image.rgbToGrayscale use.
const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;

/**
 * Converts interleaved pixels between channel counts: gray to RGB by replication, RGB or RGBA to
 * gray by luma, RGBA to RGB by dropping alpha (alpha is ignored rather than composited, because
 * there is no right background colour to composite over). Values keep their scale.
 */
export function convertChannels(
  source: ArrayLike<number>,
  pixelCount: number,
  sourceChannels: ChannelCount,
  targetChannels: 1 | 3,
): Float32Array {
  const target = new Float32Array(pixelCount * targetChannels);
  for (let p = 0; p < pixelCount; p++) {
    const s = p * sourceChannels;
    if (targetChannels === 1) {
      target[p] = sourceChannels === 1 ? source[s] : LUMA_R * source[s] + LUMA_G * source[s + 1] + LUMA_B * source[s + 2];
    } else if (sourceChannels === 1) {
      target[3 * p] = target[3 * p + 1] = target[3 * p + 2] = source[s];
    } else {
      target[3 * p] = source[s];
      target[3 * p + 1] = source[s + 1];
      target[3 * p + 2] = source[s + 2];
    }
  }
  return target;
}

/**
 * Resizes an interleaved [height, width, channels] image with bilinear interpolation and
 * half-pixel centres (as tf.image.resizeBilinear with halfPixelCenters), multiplies every value
 * by `scale`, and writes the result into `target` from `targetOffset`. Equal sizes copy exactly.
 */
export function resizeBilinearInto(
  source: ArrayLike<number>,
  sourceHeight: number,
  sourceWidth: number,
  channels: number,
  target: Float32Array,
  targetOffset: number,
  targetHeight: number,
  targetWidth: number,
  scale = 1,
): void {
  if (sourceHeight === targetHeight && sourceWidth === targetWidth) {
    const length = sourceHeight * sourceWidth * channels;
    for (let i = 0; i < length; i++) target[targetOffset + i] = source[i] * scale;
    return;
  }
  const rowStride = sourceWidth * channels;
  const yRatio = sourceHeight / targetHeight;
  const xRatio = sourceWidth / targetWidth;
  let out = targetOffset;
  for (let y = 0; y < targetHeight; y++) {
    const sourceY = Math.min(Math.max((y + 0.5) * yRatio - 0.5, 0), sourceHeight - 1);
    const y0 = Math.floor(sourceY);
    const y1 = Math.min(y0 + 1, sourceHeight - 1);
    const fy = sourceY - y0;
    for (let x = 0; x < targetWidth; x++) {
      const sourceX = Math.min(Math.max((x + 0.5) * xRatio - 0.5, 0), sourceWidth - 1);
      const x0 = Math.floor(sourceX);
      const x1 = Math.min(x0 + 1, sourceWidth - 1);
      const fx = sourceX - x0;
      const topLeft = y0 * rowStride + x0 * channels;
      const topRight = y0 * rowStride + x1 * channels;
      const bottomLeft = y1 * rowStride + x0 * channels;
      const bottomRight = y1 * rowStride + x1 * channels;
      for (let c = 0; c < channels; c++) {
        const top = source[topLeft + c] + (source[topRight + c] - source[topLeft + c]) * fx;
        const bottom = source[bottomLeft + c] + (source[bottomRight + c] - source[bottomLeft + c]) * fx;
        target[out++] = (top + (bottom - top) * fy) * scale;
      }
    }
  }
}

/**
 * Writes one 8-bit image into `target` as floats in [0, 1], converted to the target channel
 * count and resized to the target height and width.
 */
export function writeImageAsFloats(
  source: ArrayLike<number>,
  sourceShape: [number, number, ChannelCount],
  target: Float32Array,
  targetOffset: number,
  targetShape: [number, number, 1 | 3],
): void {
  const [sourceHeight, sourceWidth, sourceChannels] = sourceShape;
  const [targetHeight, targetWidth, targetChannels] = targetShape;
  const converted =
    sourceChannels === targetChannels ? source : convertChannels(source, sourceHeight * sourceWidth, sourceChannels, targetChannels);
  resizeBilinearInto(converted, sourceHeight, sourceWidth, targetChannels, target, targetOffset, targetHeight, targetWidth, 1 / 255);
}
