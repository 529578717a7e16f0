/**
 * Moving-average momentum of the builtins' BatchNormalization layers. tfjs defaults to 0.99,
 * which on our short runs (tens of batches per epoch) leaves the inference statistics far behind
 * the weights: validation accuracy lags training accuracy by tens of points. 0.9 is PyTorch's
 * default (its `momentum=0.1` counts the other way).
 */
export const BN_MOMENTUM = 0.9;
