import * as tf from '@tensorflow/tfjs';
import { Command, CommanderError, Option } from 'commander';
import { initBackend } from '../engine/backends';
import { isPasInputError } from '../engine/errors';
import type { BackendChoice, BackendName } from '../shared/workerProtocol';
import { runInspect } from './commands/inspect';
import { runReparam } from './commands/reparam';
import { runSearch } from './commands/search';
import { Output } from './output';
import { BACKEND_CHOICES, parseWorkersOption, parseFraction, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber, parseShape } from './options';

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
    .option('--json', 'one JSON event per line on stdout (the worker protocol)');
}

async function withBackend(choice: BackendChoice, output: Output): Promise<BackendName> {
  const info = await initBackend(choice);
  output.note(`backend: ${info.name}${info.threads > 1 ? ` (${info.threads} threads)` : ''}`);
  return info.name;
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
      .argument('<model>', 'path to model.json (or its folder), or builtin:NAME')
      .option('--latency', 'also measure the deployed form: median latency of repeated runs on the backend, total and per layer')
      .option('--batch <n>', 'images per timed pass with --latency', parsePositiveInt, 1),
  ).action(async (model: string, options) => {
    const output = new Output(!!options.json);
    await withBackend(options.backend, output);
    await runInspect(model, options, output);
  });

  addModelOptions(
    program
      .command('reparam')
      .description('write the deployed model: prune masked channels, fuse multi-branch blocks, fold BN')
      .argument('<model>', 'path to model.json (or its folder), or builtin:NAME')
      .option('--out <dir>', 'output folder (default: a new folder next to the model folder)')
      .option('--check', 'verify the deployed model on random input; exit 3 above 1e-4'),
  ).action(async (model: string, options) => {
    const output = new Output(!!options.json);
    await withBackend(options.backend, output);
    setExit(await runReparam(model, options, output));
  });

  addModelOptions(
    program
      .command('search')
      .description('the PaS job: (pre)train, search widths under a MACs budget, fine-tune with frozen masks, prune, reparameterize')
      .argument('[model]', 'path to model.json (or its folder), or builtin:NAME (e.g. builtin:default)')
      .option('--data <spec>', 'training data: sample | idx:DIR | folder:DIR', 'sample')
      .option('--target-macs <fraction>', 'MACs budget as a fraction of the deployed model, in (0, 1)', parseFraction, 0.5)
      .option('--search-epochs <n>', 'epochs of the mask search', parseNonNegativeInt, 4)
      .option('--finetune-epochs <n>', 'epochs of frozen-mask fine-tuning', parseNonNegativeInt, 4)
      .option('--pretrain-epochs <n>', `epochs of training before the search (default: ${6} for builtins, 0 for files)`, parseNonNegativeInt)
      .addOption(new Option('--method <name>', 'pas, or a baseline of the paper').choices(['pas', 'uniform', 'magnitude']).default('pas'))
      .option('--out <dir>', 'output folder (default: a new folder next to the model folder)')
      .option('--resume <dir>', 'continue a stopped or killed run from its last checkpoint')
      .option('--seed <n>', 'random seed (data order, augmentation, initialization)', parseNonNegativeInt, 1)
      .option('--batch-size <n>', 'training batch size', parsePositiveInt, 64)
      .option('--alpha <x>', 'weight of the MACs budget loss', parsePositiveNumber, 8)
      .option('--workers <n>', 'training threads sharing each batch, or auto (one per core; wasm backend only)', parseWorkersOption, 'auto')
      .addOption(new Option('--max-train <n>', 'use at most n training images').argParser(parsePositiveInt).hideHelp())
      .addOption(new Option('--max-test <n>', 'use at most n test images').argParser(parsePositiveInt).hideHelp()),
  ).action(async (model: string | undefined, options) => {
    const output = new Output(!!options.json);
    const backend = await withBackend(options.backend, output);
    setExit(await runSearch(model, options, backend, output));
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
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
