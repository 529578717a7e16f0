import * as path from 'path';
import { deployModel, EQUIVALENCE_TOLERANCE } from '../../engine/deploy';
import { defaultDeployedFormat, DeployedFormat, mainDeployedFile, saveDeployedModel } from '../../engine/onnx';
import { imageInputShape, loadModelSource } from '../../engine/model';
import { assertOutsideModelFolder, defaultOutputDir } from '../../engine/outputPaths';
import { formatCount, Output } from '../output';
import { builtinOptionsFrom, ModelOptions } from '../options';

export interface ReparamOptions extends ModelOptions {
  out?: string;
  check?: boolean;
  format?: DeployedFormat;
}

/** Exit code 3: the deployed model differs from the training-time one by more than the tolerance. */
export const EXIT_NOT_EQUIVALENT = 3;

export async function runReparam(modelSpec: string, options: ReparamOptions, output: Output): Promise<number> {
  output.start('reparam', modelSpec);
  const loaded = await loadModelSource(modelSpec, builtinOptionsFrom(options));
  const outDir = path.resolve(options.out ?? defaultOutputDir(loaded.file, loaded.source, 'deployed'));
  assertOutsideModelFolder(outDir, loaded.file);
  const inputShape = imageInputShape(loaded.model, loaded.source);
  const deployment = await deployModel(loaded.model, inputShape);
  if (options.check && !(deployment.maxAbsDiff <= EQUIVALENCE_TOLERANCE)) {
    // Nothing is written for a model that would not be equivalent.
    output.event({ type: 'error', message: `deployed model differs by ${deployment.maxAbsDiff} (> ${EQUIVALENCE_TOLERANCE})`, file: loaded.source });
    output.note(`pas: ${loaded.source}: deployed model differs by ${deployment.maxAbsDiff.toExponential(3)} (> ${EQUIVALENCE_TOLERANCE}); nothing written`);
    return EXIT_NOT_EQUIVALENT;
  }
  const saved = await saveDeployedModel(deployment.deployed, outDir, options.format ?? defaultDeployedFormat(loaded.source), { source: loaded.onnx });
  output.event({
    type: 'reparam',
    input: loaded.source,
    output: mainDeployedFile(saved),
    maxAbsDiff: deployment.maxAbsDiff,
    macsTraining: deployment.trainingSummary.totalMacs,
    macsDeployed: deployment.deployedSummary.totalMacs,
    paramsDeployed: deployment.deployedSummary.totalParams,
    unfusedBlocks: deployment.unfusedBlocks,
  });
  output.event({ type: 'done', outputDir: outDir });
  output.text(`deployed model: ${[saved.onnxPath, saved.modelJsonPath].filter(Boolean).join(', ')}`);
  output.text(`training-time form: ${formatCount(deployment.trainingSummary.totalMacs)} MACs, ${formatCount(deployment.trainingSummary.totalParams)} params, ${loaded.model.layers.length} layers`);
  output.text(`deployed form:      ${formatCount(deployment.deployedSummary.totalMacs)} MACs, ${formatCount(deployment.deployedSummary.totalParams)} params, ${deployment.deployed.layers.length} layers`);
  for (const b of deployment.unfusedBlocks) output.text(`left unfused: block '${b.block}' (${b.reason})`);
  output.text(`max abs difference on a random batch: ${deployment.maxAbsDiff.toExponential(3)}${options.check ? ` (check: <= ${EQUIVALENCE_TOLERANCE}, ok)` : ''}`);
  return 0;
}
