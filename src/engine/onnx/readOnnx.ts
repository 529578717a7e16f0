/**
 * Reading an untrusted .onnx file: protobuf decoding with the official schema, then every check
 * a hostile file needs before anything is allocated from it (declared sizes, external-data paths
 * that must stay inside the model's folder, data lengths, NaN weights). Every refusal is a
 * PasInputError naming the file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { PasInputError } from '../errors';
import { describeFsError } from '../io/fsErrors';
import { MAX_WEIGHT_BYTES } from '../io/weightManifest';
import { ATTR_FLOAT, ATTR_FLOATS, ATTR_INT, ATTR_INTS, ATTR_STRING, ATTR_TENSOR, int64, modelProto, ONNX_DOUBLE, ONNX_FLOAT, ONNX_INT32, ONNX_INT64 } from './schema';

/** Largest .onnx file read (2 GiB, protobuf's own limit for one message). */
export const MAX_ONNX_FILE_BYTES = 2 * 1024 ** 3 - 1;

/** A constant tensor (initializer or Constant node), decoded. Integer tensors are held as numbers. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  values: Float32Array | number[];
  isInteger: boolean;
}

/** One attribute value, decoded. */
export type OnnxAttribute = number | number[] | string | OnnxTensor;

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

/** A graph input or output: its name and shape (a dim is a number, or a string for a symbolic one). */
export interface OnnxValueInfo {
  name: string;
  shape: (number | string)[] | undefined;
}

/** What the importer needs from a ModelProto. */
export interface OnnxModel {
  file: string;
  irVersion: number;
  /** Version of the default ('' or 'ai.onnx') operator set. */
  opset: number;
  producer: string;
  graphName: string;
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

const BYTES_PER_TYPE = new Map([
  [ONNX_FLOAT, 4],
  [ONNX_INT32, 4],
  [ONNX_INT64, 8],
  [ONNX_DOUBLE, 8],
]);

function elementCount(dims: number[], what: string, file: string): number {
  let count = 1;
  for (const dim of dims) {
    if (!Number.isSafeInteger(dim) || dim < 0) throw new PasInputError(`${what} declares dimension ${dim}, which is not a size`, file);
    count *= dim;
    if (count * 4 > MAX_WEIGHT_BYTES) throw new PasInputError(`${what} declares shape [${dims.join(', ')}], more than ${MAX_WEIGHT_BYTES} bytes`, file);
  }
  return count;
}

/** Reads the external-data bytes of a tensor, refusing paths that leave the model's folder. */
function readExternalData(tensor: any, byteLength: number, what: string, file: string): Uint8Array {
  const entries = new Map<string, string>((tensor.external_data ?? []).map((entry: any) => [String(entry.key), String(entry.value)]));
  const location = entries.get('location');
  if (!location) throw new PasInputError(`${what} is stored externally but names no location`, file);
  const folder = path.dirname(path.resolve(file));
  const target = path.resolve(folder, location);
  if (path.isAbsolute(location) || !(target.startsWith(folder + path.sep))) {
    throw new PasInputError(`${what} points to external data '${location}' outside the model's folder; refusing to read it`, file);
  }
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch (error) {
    throw new PasInputError(`cannot read external data '${location}' of ${what}: ${describeFsError(error)}`, file);
  }
  const realFolder = fs.realpathSync(folder);
  if (!real.startsWith(realFolder + path.sep)) throw new PasInputError(`${what} points to external data '${location}', a link leading outside the model's folder; refusing to read it`, file);
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : byteLength;
  if (!Number.isSafeInteger(offset) || offset < 0 || length !== byteLength) {
    throw new PasInputError(`${what} has external data offset ${entries.get('offset')} and length ${entries.get('length')}, but its shape needs ${byteLength} bytes`, file);
  }
  const size = fs.statSync(real).size;
  if (offset + byteLength > size) throw new PasInputError(`external data '${location}' of ${what} is ${size} bytes, too short for ${byteLength} bytes at offset ${offset}`, file);
  const buffer = Buffer.alloc(byteLength);
  const fd = fs.openSync(real, 'r');
  try {
    fs.readSync(fd, buffer, 0, byteLength, offset);
  } finally {
    fs.closeSync(fd);
  }
  return buffer;
}

/** Decodes a TensorProto (float, double, int32 or int64; raw, typed or external data). */
export function decodeTensor(tensor: any, file: string, fallbackName = ''): OnnxTensor {
  const name = String(tensor.name || fallbackName);
  const what = `tensor '${name}'`;
  const dims = (tensor.dims ?? []).map(int64);
  const count = elementCount(dims, what, file);
  const dataType = Number(tensor.data_type);
  const bytesPer = BYTES_PER_TYPE.get(dataType);
  if (!bytesPer) throw new PasInputError(`${what} has data type ${dataType}; PaS reads float, double, int32 and int64 tensors`, file);
  const isInteger = dataType === ONNX_INT32 || dataType === ONNX_INT64;
  let raw: Uint8Array | undefined;
  if (Number(tensor.data_location) === 1) raw = readExternalData(tensor, count * bytesPer, what, file);
  else if (tensor.raw_data && tensor.raw_data.length > 0) raw = tensor.raw_data;
  let values: Float32Array | number[];
  if (raw) {
    if (raw.length !== count * bytesPer) throw new PasInputError(`${what} has ${raw.length} bytes of data, but shape [${dims.join(', ')}] needs ${count * bytesPer}`, file);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (dataType === ONNX_FLOAT) {
      values = new Float32Array(count);
      for (let i = 0; i < count; i++) values[i] = view.getFloat32(4 * i, true);
    } else if (dataType === ONNX_DOUBLE) {
      values = new Float32Array(count);
      for (let i = 0; i < count; i++) values[i] = view.getFloat64(8 * i, true);
    } else if (dataType === ONNX_INT32) {
      values = Array.from({ length: count }, (_, i) => view.getInt32(4 * i, true));
    } else {
      values = Array.from({ length: count }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    }
  } else {
    const typed: unknown[] =
      dataType === ONNX_FLOAT ? tensor.float_data : dataType === ONNX_DOUBLE ? tensor.double_data : dataType === ONNX_INT32 ? tensor.int32_data : tensor.int64_data;
    if ((typed ?? []).length !== count) throw new PasInputError(`${what} has ${(typed ?? []).length} values, but shape [${dims.join(', ')}] needs ${count}`, file);
    values = isInteger ? typed.map(int64) : Float32Array.from(typed as number[]);
  }
  if (!isInteger) {
    const bad = (values as Float32Array).findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new PasInputError(`${what} holds ${(values as Float32Array)[bad]} at index ${bad}; weights must be finite numbers`, file);
  }
  return { name, dims, values, isInteger };
}

function decodeAttribute(attribute: any, file: string, nodeName: string): OnnxAttribute | undefined {
  switch (Number(attribute.type)) {
    case ATTR_FLOAT:
      return Number(attribute.f ?? 0);
    case ATTR_INT:
      return int64(attribute.i ?? 0);
    case ATTR_STRING:
      return Buffer.from(attribute.s ?? []).toString('utf8');
    case ATTR_TENSOR:
      return decodeTensor(attribute.t, file, `${nodeName}.${attribute.name}`);
    case ATTR_FLOATS:
      return (attribute.floats ?? []).map(Number);
    case ATTR_INTS:
      return (attribute.ints ?? []).map(int64);
    default:
      return undefined; // graphs, sparse tensors, ...: no CNN op PaS converts uses them
  }
}

function valueInfo(info: any): OnnxValueInfo {
  const dims = info.type?.tensor_type?.shape?.dim;
  return {
    name: String(info.name),
    // Decoded messages carry defaults on their prototype: test which field of the oneof is set.
    shape: dims ? dims.map((dim: any) => (Object.hasOwn(dim, 'dim_value') ? int64(dim.dim_value) : String(dim.dim_param || '?'))) : undefined,
  };
}

/**
 * Reads and checks `file` as an ONNX ModelProto.
 * @throws PasInputError naming the file: unreadable, too large, not a ModelProto (truncated, wrong
 *   content), no graph, an unsupported operator set domain, hostile tensors (see {@link decodeTensor}).
 */
export function readOnnxModel(file: string): OnnxModel {
  let bytes: Buffer;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_ONNX_FILE_BYTES) throw new PasInputError(`the file is ${size} bytes, more than ONNX's 2 GiB limit`, file);
    bytes = fs.readFileSync(file);
  } catch (error) {
    if (error instanceof PasInputError) throw error;
    throw new PasInputError(`cannot read the model file: ${describeFsError(error)}`, file);
  }
  let proto: any;
  try {
    proto = modelProto().decode(bytes);
  } catch (error) {
    throw new PasInputError(`not an ONNX model: the protobuf does not decode (${error instanceof Error ? error.message : String(error)}); truncated or another format?`, file);
  }
  if (!proto.graph || !proto.ir_version || (proto.graph.node ?? []).length === 0) {
    throw new PasInputError('not an ONNX model: no ir_version or no graph with nodes (is it another format?)', file);
  }
  const opsetEntry = (proto.opset_import ?? []).find((entry: any) => !entry.domain || entry.domain === 'ai.onnx');
  const opset = opsetEntry ? int64(opsetEntry.version) : 0;
  if (opset < 7 || opset > 21) throw new PasInputError(`the model uses ONNX operator set ${opset || 'none'}; PaS reads opsets 7 to 21 (torch.onnx.export writes 11 to 17)`, file);
  const graph = proto.graph;
  const initializers = new Map<string, OnnxTensor>();
  let totalElements = 0;
  for (const tensor of graph.initializer ?? []) {
    // External data is not bounded by the file size: bound the sum before reading the next one.
    totalElements += elementCount((tensor.dims ?? []).map(int64), `tensor '${tensor.name}'`, file);
    if (totalElements * 4 > MAX_WEIGHT_BYTES) throw new PasInputError(`the weights total more than ${MAX_WEIGHT_BYTES} bytes`, file);
    const decoded = decodeTensor(tensor, file);
    initializers.set(decoded.name, decoded);
  }
  const nodes: OnnxNode[] = (graph.node ?? []).map((node: any, i: number) => {
    const name = String(node.name || `${node.op_type}_${i}`);
    const attributes = new Map<string, OnnxAttribute>();
    for (const attribute of node.attribute ?? []) {
      const value = decodeAttribute(attribute, file, name);
      if (value !== undefined) attributes.set(String(attribute.name), value);
    }
    return { name, opType: String(node.op_type), domain: String(node.domain ?? ''), inputs: (node.input ?? []).map(String), outputs: (node.output ?? []).map(String), attributes };
  });
  return {
    file,
    irVersion: int64(proto.ir_version),
    opset,
    producer: `${proto.producer_name ?? ''} ${proto.producer_version ?? ''}`.trim(),
    graphName: String(graph.name || 'onnx_model'),
    nodes,
    initializers,
    // Older exporters list the initializers among the inputs too.
    inputs: (graph.input ?? []).map(valueInfo).filter((info: OnnxValueInfo) => !initializers.has(info.name)),
    outputs: (graph.output ?? []).map(valueInfo),
  };
}
