import * as tf from '@tensorflow/tfjs';
import { Command, CommanderError, Option } from 'commander';
import { initBackend } from '../engine/backends';
import { isPasInputError } from '../engine/errors';
import type { BackendChoice } from '../shared/workerProtocol';
import { runInspect } from './commands/inspect';
import { runReparam } from './commands/reparam';
import { Output } from './output';
import { BACKEND_CHOICES, parsePositiveInt, parsePositiveNumber, parseShape } from './options';

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

async function withBackend(choice: BackendChoice, output: Output): Promise<string> {
  const info = await initBackend(choice);
  output.note(`backend: ${info.name}${info.threads > 1 ? ` (${info.threads} threads)` : ''}${info.note && choice === 'auto' ? '' : ''}`);
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
      .argument('<model>', 'path to model.json (or its folder), or builtin:NAME'),
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
      // Help and version exit 0; usage errors are input errors.
      return error.exitCode === 0 ? 0 : EXIT_INPUT_ERROR;
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
