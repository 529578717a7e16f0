import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Command, CommanderError, Option } from 'commander';
import { initBackend } from '../engine/backends';
import { isPasInputError, PasInputError } from '../engine/errors';
import type { BackendChoice, BackendName } from '../shared/workerProtocol';
import { runInspect } from './commands/inspect';
import { runReparam } from './commands/reparam';
import { runSearch } from './commands/search';
import { DEPLOYED_FORMATS } from '../engine/onnx/saveDeployed';
import { runCompare } from './commands/compare';
import { endQuietlyOnClosedPipe } from './closedPipe';
import { Output } from './output';
import { DEFAULT_LATENT_PRIOR } from '../engine/search/latentInit';
import { DEFAULT_LEARNING_RATE_SCHEDULE, LEARNING_RATE_SCHEDULES } from '../engine/search/learningRateSchedule';
import { BACKEND_CHOICES, parseFraction, parseLatentPrior, parseNameList, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber, parseRoundToOption, parseShape, parseUnitInterval, parseWorkersOption } from './options';
import { PRUNE_METHOD_NAMES } from '../engine/search/methods';
import { DEFAULT_WIDTH_CONSTRAINTS } from '../engine/search/widthConstraints';

/** Exit codes: 0 ok, 1 a bug, 2 bad input (file, data or argument), 3 a failed --check, 130 cancelled. */
export const EXIT_INPUT_ERROR = 2;

// tfjs' "install the node backend" banner and debug checks: the backend ladder reports the backend.
tf.enableProdMode();

function addModelOptions(command: Command): Command {
  return command
    .option('--input <H,W,C>', 'input shape of a builtin model, e.g. 224,224,3', parseShape)
    .option('--classes <N>', 'class count of a builtin model', parsePositiveInt)
    .option('--width-multiplier <X>', 'extra width factor of a builtin model', parsePositiveNumber)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(new Option('--native-dir <dir>', 'folder with an npm-installed @tensorflow/tfjs-node(-gpu) for the native backends').env('PAS_NATIVE_DIR'))
    .option('--json', 'one JSON event per line on stdout (the worker protocol)');
}

async function withBackend(options: { backend: BackendChoice; nativeDir?: string }, output: Output): Promise<BackendName> {
  const nativeDir = options.nativeDir?.trim() ? path.resolve(options.nativeDir) : undefined;
  if (nativeDir !== undefined && !fs.statSync(nativeDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new PasInputError('the native backend folder (--native-dir or PAS_NATIVE_DIR) does not exist or is not a folder', nativeDir);
  }
  const info = await initBackend(options.backend, { nativeDir });
  output.note(`backend: ${info.name}${info.threads > 1 ? ` (${info.threads} threads)` : ''}`);
  // Why each faster rung was skipped: on stderr for a person, in the start event for the extension.
  if (info.note) output.note(`  backend notes: ${info.note}`);
  output.backend = info.name;
  output.backendNote = info.note;
  return info.name;
}

/** Options shared by `search` and `compare`. */
function addSearchOptions(command: Command): Command {
  return command
    .option('--data <spec>', 'training data: sample | idx:DIR | folder:DIR', 'sample')
    .option('--target-macs <fraction>', 'MACs budget as a fraction of the deployed model, in (0, 1)', parseFraction, 0.5)
    .option('--search-epochs <n>', 'epochs of the mask search', parseNonNegativeInt, 4)
    .option('--finetune-epochs <n>', 'epochs of frozen-mask fine-tuning', parseNonNegativeInt, 4)
    .option('--pretrain-epochs <n>', `epochs of training before the search (default: ${6} for builtins, 0 for files)`, parseNonNegativeInt)
    .option('--min-keep <fraction>', 'no layer keeps fewer than ceil(FRACTION x its width) channels (never fewer than 1)', parseUnitInterval, DEFAULT_WIDTH_CONSTRAINTS.minKeep)
    .option('--round-to <auto|N>', 'kept channel counts are multiples of N where the width allows (1: any count); auto: multiples of 8 in layers of 64+ channels (XNNPACK computes channels in 8s), any count in narrower ones', parseRoundToOption, DEFAULT_WIDTH_CONSTRAINTS.roundTo)
    .option('--keep <names>', 'prunable groups held at full width (NAME[,NAME...]; see pas inspect)', parseNameList, [])
    .option('--out <dir>', 'output folder (default: a new folder next to the model folder)')
    .option('--seed <n>', 'random seed (data order, augmentation, initialization)', parseNonNegativeInt, 1)
    .option('--batch-size <n>', 'training batch size', parsePositiveInt, 64)
    .option('--alpha <x>', 'weight of the MACs budget loss', parsePositiveNumber, 8)
    .option('--latent-prior <spread>', `PaS: the searched latents start ordered by BN |gamma| within each layer, SPREAD apart from the most to the least important channel (0: all equal)`, parseLatentPrior, DEFAULT_LATENT_PRIOR)
    .addOption(new Option('--lr-schedule <schedule>', 'learning rate of the weights after the trained model: shared = one cosine over search + fine-tune epochs (the same curve as a baseline of equal epochs); per-phase = constant during the search, then a cosine over the fine-tune').choices(LEARNING_RATE_SCHEDULES).default(DEFAULT_LEARNING_RATE_SCHEDULE))
    .option('--workers <n>', 'training threads sharing each batch, or auto (one per core; wasm backend only)', parseWorkersOption, 'auto')
    .addOption(new Option('--format <format>', 'deployed model format (default: onnx for an .onnx input, tfjs otherwise)').choices(DEPLOYED_FORMATS))
    .option('--micro-batch <n>', 'examples per forward/backward pass, gradients accumulated over the batch (default: sized from the memory estimate)', parsePositiveInt)
    .addOption(new Option('--input-range <range>', "the value range the model expects its pixels in (default: standardized with the data's mean and std)").choices(['0,1', '-1,1', '0,255']))
    .option('--normalize <MEAN,STD>', 'then (value - MEAN) / STD: one value each, or one per channel (means first, then stds)')
    .option('--distill', "learn from the original model's outputs (KL on classifier outputs, MSE on others); on by itself for a folder of unlabelled images")
    .option('--max-train <n>', 'use at most n training images (a trial run)', parsePositiveInt)
    .option('--max-steps <n>', 'at most n optimizer steps per epoch (a trial run)', parsePositiveInt)
    .addOption(new Option('--max-test <n>', 'use at most n test images').argParser(parsePositiveInt).hideHelp());
}

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('pas')
    .description('Pruning-as-Search: search per-layer widths of a CNN in one training run, prune it, reparameterize it')
    .showHelpAfterError()
    .exitOverride();

  addModelOptions(
    program
      .command('inspect')
      .description('per-layer widths, MACs and params of a model, training-time and deployed forms')
      .argument('<model>', 'path to model.json (or its folder), a .onnx file, or builtin:NAME')
      .option('--latency', 'also measure the deployed form: median latency of repeated runs on the backend, total and per layer')
      .option('--batch <n>', 'images per timed pass with --latency', parsePositiveInt, 1),
  ).action(async (model: string, options) => {
    const output = new Output(!!options.json);
    await withBackend(options, output);
    await runInspect(model, options, output);
  });

  addModelOptions(
    program
      .command('reparam')
      .description('write the deployed model: prune masked channels, fuse multi-branch blocks, fold BN')
      .argument('<model>', 'path to model.json (or its folder), a .onnx file, or builtin:NAME')
      .option('--out <dir>', 'output folder (default: a new folder next to the model folder)')
      .option('--check', 'verify the deployed model on random input; exit 3 above 1e-4')
      .addOption(new Option('--format <format>', 'deployed model format (default: onnx for an .onnx input, tfjs otherwise)').choices(DEPLOYED_FORMATS)),
  ).action(async (model: string, options) => {
    const output = new Output(!!options.json);
    await withBackend(options, output);
    setExit(await runReparam(model, options, output));
  });

  addSearchOptions(
    addModelOptions(
      program
        .command('search')
        .description('the PaS job: (pre)train, search widths under a MACs budget, fine-tune with frozen masks, prune, reparameterize')
        .argument('[model]', 'path to model.json (or its folder), or builtin:NAME (e.g. builtin:default)')
        .addOption(new Option('--method <name>', 'pas, or a baseline of the paper').choices(PRUNE_METHOD_NAMES).default('pas'))
        .option('--resume <dir>', 'continue a stopped or killed run from its last checkpoint'),
    ),
  ).action(async (model: string | undefined, options) => {
    const output = new Output(!!options.json);
    const backend = await withBackend(options, output);
    setExit(await runSearch(model, options, backend, output));
  });

  addSearchOptions(
    addModelOptions(
      program
        .command('compare')
        .description('PaS and the baselines at the same MACs target, data, seed and weight-training epochs; writes compare.json and a table')
        .argument('<model>', 'path to model.json (or its folder), or builtin:NAME'),
    ),
  ).action(async (model: string, options) => {
    const output = new Output(!!options.json);
    const backend = await withBackend(options, output);
    setExit(await runCompare(model, options, backend, output));
  });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = buildProgram((code) => (exitCode = code));
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors are input errors (commander printed the message).
      if (error.exitCode === 0) return 0;
      if (json) new Output(true).event({ type: 'error', message: error.message.replace(/^error: /, '') });
      return EXIT_INPUT_ERROR;
    }
    if (isPasInputError(error)) {
      if (json) new Output(true).event({ type: 'error', message: error.reason, file: error.file });
      process.stderr.write(`pas: ${error.message}\n`);
      return EXIT_INPUT_ERROR;
    }
    const message = error instanceof Error ? error.message : String(error);
    if (json) new Output(true).event({ type: 'error', message: `internal error: ${message}` });
    process.stderr.write(`pas: internal error: ${error instanceof Error && error.stack ? error.stack : message}\n`);
    return 1;
  }
}

if (require.main === module) {
  endQuietlyOnClosedPipe();
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
