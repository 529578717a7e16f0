/**
 * A builtin model takes its class count and input shape from the data unless the user gave
 * `--classes` / `--input` (issue 16): `builtin:plain-cnn` on a 2-class folder becomes a 2-class
 * net, instead of a 10-class net whose loss fails on 2-wide labels. The resolved values are
 * written into the run settings, so a resumed run builds the same model.
 */
import { describeDataset } from '../data';
import { isBuiltinSpec } from '../zoo/builtins';
import type { RunSettings } from './runState';

/** The settings with a builtin's class count and input shape filled in, and one note per choice for the terminal. */
export async function fitBuiltinToData(settings: RunSettings): Promise<{ settings: RunSettings; notes: string[] }> {
  if (!isBuiltinSpec(settings.modelSpec)) return { settings, notes: [] };
  const given = settings.builtinOptions;
  if (given.numClasses !== undefined && given.inputShape !== undefined) {
    return { settings, notes: [`classes: ${given.numClasses}, input: ${given.inputShape.join('x')} (from --classes and --input)`] };
  }
  const data = await describeDataset(settings.dataSpec, settings.seed);
  const notes: string[] = [];
  const builtinOptions = { ...given };
  if (given.numClasses !== undefined) {
    notes.push(`classes: ${given.numClasses} (from --classes)`);
  } else if (data.labelled) {
    builtinOptions.numClasses = data.numClasses;
    notes.push(`classes: ${data.numClasses} (from the data ${settings.dataSpec}; --classes overrides)`);
  }
  if (given.inputShape !== undefined) {
    notes.push(`input: ${given.inputShape.join('x')} (from --input)`);
  } else {
    builtinOptions.inputShape = data.imageShape;
    notes.push(`input: ${data.imageShape.join('x')} (from the data ${settings.dataSpec}; --input overrides)`);
  }
  return { settings: { ...settings, builtinOptions }, notes };
}
