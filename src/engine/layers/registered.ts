/**
 * Every layer class the engine adds to TF.js, registered with its serialization by importing
 * this one module: whatever deserializes a model (the loader, graph rebuilds, worker replicas)
 * imports it, so a class cannot be missing on one path only.
 * - DepthwiseBinaryConv: PaS's mask layer.
 * - GroupedConv2D, ChannelShuffle, ChannelSlice: what the ONNX importer writes for grouped
 *   convolutions and ShuffleNet.
 * - Normalization: Keras' preprocessing layer, which TF.js 4 lacks.
 */
import './dbc';
import './groupedConv';
import './channelOps';
import './kerasNormalization';
