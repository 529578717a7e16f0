/**
 * The ONNX protobuf schema, loaded with protobufjs from the official onnx.proto (ONNX 1.12,
 * Apache-2.0, shipped next to this file and copied into dist/ by esbuild.js). Field names keep
 * the schema's snake_case (`keepCase`), so code reads like the ONNX specification.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';

/** ONNX TensorProto.DataType values this engine reads or writes. */
export const ONNX_FLOAT = 1;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;
export const ONNX_DOUBLE = 11;

/** AttributeProto.AttributeType values. */
export const ATTR_FLOAT = 1;
export const ATTR_INT = 2;
export const ATTR_STRING = 3;
export const ATTR_TENSOR = 4;
export const ATTR_FLOATS = 6;
export const ATTR_INTS = 7;

let modelProtoType: protobuf.Type | undefined;

function schemaPath(): string {
  // Bundled (dist/cli.js, dist/extension.js): next to the bundle; from sources (tests): next to this file.
  const candidates = [path.join(__dirname, 'onnx.proto'), path.join(__dirname, '..', 'src', 'engine', 'onnx', 'onnx.proto')];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) throw new Error(`onnx.proto not found (looked in ${candidates.join(', ')}); rebuild with node esbuild.js`);
  return found;
}

/** The `onnx.ModelProto` message type (parsed once). */
export function modelProto(): protobuf.Type {
  if (!modelProtoType) {
    const root = protobuf.parse(fs.readFileSync(schemaPath(), 'utf8'), { keepCase: true }).root;
    modelProtoType = root.lookupType('onnx.ModelProto');
  }
  return modelProtoType;
}

/** An int64 field as protobufjs decodes it (a Long when the `long` package is present). */
export function int64(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value && typeof (value as { toNumber?: unknown }).toNumber === 'function') return (value as { toNumber(): number }).toNumber();
  return Number(value);
}
