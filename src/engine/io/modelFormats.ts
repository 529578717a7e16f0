/**
 * Model files PaS cannot read, recognized so that the refusal names the format and the way to a
 * TF.js Layers model.json, instead of a filesystem or JSON error.
 *
 * One table row per format. A format is recognized by its content (magic bytes) first, so a
 * renamed file is still named correctly, and by its file name otherwise. ONNX has no row: the
 * loader imports `.onnx` files, and files with an ONNX signature under another name.
 */
import * as fs from 'fs';
import * as path from 'path';
import { PasInputError } from '../errors';

interface ForeignFormat {
  /** What the user is told the file is. */
  name: string;
  /** Lower-case file name endings of this format. */
  extensions: string[];
  /** Whether the first bytes of the file (up to HEADER_BYTES) are this format. */
  matches?: (header: Buffer) => boolean;
  /** What to do instead: how to get a TF.js Layers model.json. */
  advice: string;
}

/** How much of a file the content checks read. */
const HEADER_BYTES = 4096;

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_SIGNATURE = Buffer.from('PK\x03\x04', 'latin1');
/** PyTorch's legacy (pre-zip) serialization: pickle protocol 2, then its magic number as a long. */
const TORCH_LEGACY_SIGNATURE = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

/** HDF5 files may start with a user block of 512, 1024, 2048... bytes before the signature. */
function isHdf5(header: Buffer): boolean {
  for (let offset = 0; offset + HDF5_SIGNATURE.length <= header.length; offset = offset === 0 ? 512 : offset * 2) {
    if (header.subarray(offset, offset + HDF5_SIGNATURE.length).equals(HDF5_SIGNATURE)) return true;
  }
  return false;
}

function isZipWith(header: Buffer, entry: RegExp): boolean {
  return header.subarray(0, 4).equals(ZIP_SIGNATURE) && entry.test(header.toString('latin1'));
}

/** A PyTorch zip archive holds `<name>/data.pkl`; a Keras 3 `.keras` zip holds `config.json` and `model.weights.h5`. */
const isTorchZip = (h: Buffer) => isZipWith(h, /data\.pkl|\/version/);
const isKerasZip = (h: Buffer) => isZipWith(h, /config\.json|metadata\.json|model\.weights\.h5/);

/** ONNX ModelProto: field 1 (ir_version, varint) first, and a producer such as "pytorch" or "tf2onnx" near the start. */
const isOnnx = (h: Buffer): boolean => h[0] === 0x08 && h[1] !== undefined && h[1] < 0x20 && /\x12.(pytorch|tf2onnx|keras2onnx|skl2onnx|onnx)/s.test(h.subarray(0, 64).toString('latin1'));

/** TensorFlow Lite FlatBuffer: the file identifier "TFL3" at byte 4. */
const isTflite = (h: Buffer) => h.subarray(4, 8).toString('latin1') === 'TFL3';

const TO_H5 = 'load it in Python with tf.keras (Keras 2) and save it as .h5, then convert that';
const KERAS_CONVERT = 'tensorflowjs_converter --input_format=keras model.h5 OUT_DIR';

export const FOREIGN_MODEL_FORMATS: readonly ForeignFormat[] = [
  {
    name: 'a Keras HDF5 model (.h5)',
    extensions: ['.h5', '.hdf5'],
    matches: isHdf5,
    advice: `convert it to a TF.js Layers model first: ${KERAS_CONVERT}, then pass OUT_DIR/model.json`,
  },
  {
    name: 'a Keras 3 model archive (.keras)',
    extensions: ['.keras'],
    matches: isKerasZip,
    advice: `PaS reads TF.js Layers models (Keras 2 layout): ${TO_H5}: ${KERAS_CONVERT}`,
  },
  {
    name: 'a PyTorch checkpoint (.pt/.pth)',
    extensions: ['.pt', '.pth', '.ckpt'],
    matches: (h) => isTorchZip(h) || h.subarray(0, TORCH_LEGACY_SIGNATURE.length).equals(TORCH_LEGACY_SIGNATURE),
    advice: 'PaS reads ONNX and TF.js Layers models, not checkpoints: export the model with torch.onnx.export(model, example_input, "model.onnx", dynamic_axes={...}) and pass model.onnx',
  },
  {
    name: 'a TensorFlow Lite model (.tflite)',
    extensions: ['.tflite'],
    matches: isTflite,
    advice: `a .tflite file holds no trainable layers; start from the Keras model it was made from: ${KERAS_CONVERT}`,
  },
  {
    name: 'a TensorFlow graph (.pb: SavedModel or frozen graph)',
    extensions: ['.pb'],
    advice: `PaS needs the layers, not a graph (tensorflowjs_converter would make a graph model, which cannot be trained); start from the Keras model: ${TO_H5}: ${KERAS_CONVERT}`,
  },
];

function readHeader(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(HEADER_BYTES);
    const read = fs.readSync(fd, buffer, 0, HEADER_BYTES, 0);
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

/** The foreign format of a file, by content first and by name otherwise; undefined for anything else (a model.json, an unreadable file). */
export function detectForeignModelFormat(file: string): ForeignFormat | undefined {
  let header: Buffer | undefined;
  try {
    if (fs.statSync(file).isFile()) header = readHeader(file);
  } catch {
    header = undefined; // unreadable: the loader reports the filesystem error itself
  }
  if (header) {
    const byContent = FOREIGN_MODEL_FORMATS.find((f) => f.matches?.(header!));
    if (byContent) return byContent;
    // JSON content is the loader's business, whatever the file is called.
    if (/^\s*[{[]/.test(header.subarray(0, 64).toString('utf8'))) return undefined;
  }
  const extension = path.extname(file).toLowerCase();
  return FOREIGN_MODEL_FORMATS.find((f) => f.extensions.includes(extension));
}

/**
 * Refuses a model path that is (or, for a folder, holds only) a format PaS cannot read, naming
 * the format and how to convert it. A folder with a TensorFlow SavedModel (saved_model.pb) and no
 * model.json is refused the same way.
 * @throws PasInputError naming `modelPath`.
 */
export function assertNotForeignModelFormat(modelPath: string): void {
  let target = modelPath;
  try {
    if (fs.statSync(modelPath).isDirectory()) {
      if (fs.existsSync(path.join(modelPath, 'model.json'))) return;
      target = path.join(modelPath, 'saved_model.pb');
      if (!fs.existsSync(target)) return;
    }
  } catch {
    // a missing path: by name only (the loader says it does not exist if it is not foreign)
  }
  const format = detectForeignModelFormat(target);
  if (format) throw new PasInputError(`this is ${format.name}, not a TF.js Layers model.json: ${format.advice}`, modelPath);
}

/** Whether a file starts like an ONNX ModelProto, whatever it is called (the loader imports it as ONNX). */
export function hasOnnxSignature(file: string): boolean {
  try {
    return fs.statSync(file).isFile() && isOnnx(readHeader(file));
  } catch {
    return false;
  }
}
