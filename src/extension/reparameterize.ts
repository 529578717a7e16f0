/**
 * `PaS: Reparameterize Model`: runs `cli reparam --check --json` on a training-time model and
 * writes the deployed model into a new folder next to the model's folder (never over it).
 */
import * as fs from 'fs';
import * as vscode from 'vscode';
import type { ReparamEvent } from '../shared/workerProtocol';
import { buildReparamArgs } from './core/cliArgs';
import { chooseOutputDir } from './core/outputNaming';
import { formatCount as fmt } from '../shared/format';
import { MODEL_INSPECTOR_VIEW_TYPE } from './viewTypes';
import type { WorkerHost } from './workerHost';

const REPARAM_TIMEOUT_MS = 10 * 60_000;

export async function reparameterizeModel(host: WorkerHost, modelPath: string): Promise<ReparamEvent | undefined> {
  const outDir = chooseOutputDir(modelPath, 'deployed', fs.existsSync);
  let result: ReparamEvent | undefined;
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `PaS: reparameterizing ${vscode.workspace.asRelativePath(modelPath)}`, cancellable: true },
    (_progress, token) => {
      const run = host.start(buildReparamArgs(modelPath, outDir), {
        onEvent: (e) => {
          if (e.type === 'reparam') result = e;
        },
      }, { timeoutMs: REPARAM_TIMEOUT_MS });
      token.onCancellationRequested(() => run.cancel());
      return run.outcome;
    },
  );
  switch (outcome.kind) {
    case 'done': {
      if (!result) {
        void vscode.window.showErrorMessage('PaS: the reparameterization finished without a result.', 'Open Log').then((c) => c && host.showLog());
        return undefined;
      }
      const r = result;
      const choice = await vscode.window.showInformationMessage(
        `PaS: deployed model written to ${vscode.workspace.asRelativePath(r.output)}. Max |difference| vs the training-time model: ${r.maxAbsDiff.toExponential(2)}. MACs ${fmt(r.macsTraining)} (training) → ${fmt(r.macsDeployed)} (deployed), ${fmt(r.paramsDeployed)} params.`,
        'Open Deployed Model',
        'Reveal in Explorer',
      );
      const outUri = vscode.Uri.file(r.output);
      if (choice === 'Open Deployed Model') await vscode.commands.executeCommand('vscode.openWith', outUri, MODEL_INSPECTOR_VIEW_TYPE);
      if (choice === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', outUri);
      return r;
    }
    case 'cancelled':
      void vscode.window.showInformationMessage('PaS: reparameterization cancelled.');
      return undefined;
    case 'error':
      void vscode.window.showErrorMessage(`PaS: cannot reparameterize: ${outcome.event.message}`, 'Open Log').then((c) => c && host.showLog());
      return undefined;
    default:
      void vscode.window.showErrorMessage(`PaS: the reparameterization worker failed: ${outcome.reason}`, 'Open Log').then((c) => c && host.showLog());
      return undefined;
  }
}
