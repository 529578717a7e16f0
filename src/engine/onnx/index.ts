/** ONNX in and out: import of torch.onnx.export'ed CNNs, export of deployed models. */
export { importOnnxModel, convertOnnxModel, type OnnxSourceInfo, type ImportedOnnx } from './importOnnx';
export { readOnnxModel, type OnnxModel } from './readOnnx';

/** Whether a model path names an ONNX file (by extension, as users and VS Code see it). */
export function isOnnxPath(file: string): boolean {
  return file.toLowerCase().endsWith('.onnx');
}
export { exportOnnxBytes, EXPORT_OPSET } from './exportOnnx';
export { saveDeployedModel, defaultDeployedFormat, mainDeployedFile, DEPLOYED_FORMATS, ONNX_FILE_NAME, type DeployedFormat, type SavedDeployedModel } from './saveDeployed';
