/**
 * "PaS: Set Up Native Backend" and "PaS: Remove Native Backend": install `@tensorflow/tfjs-node-gpu`
 * or `@tensorflow/tfjs-node` at the engine's exact tfjs version into the extension's global storage
 * (which survives extension updates), and tell the worker where it is (PAS_NATIVE_DIR).
 * `pas.nativeBackendDir` points at an existing install instead. The work itself is in install.ts.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { WorkerHost } from '../workerHost';
import {
  engineTfjsVersion,
  installedVariant,
  installNativeBackend,
  NATIVE_PACKAGES,
  packageSpec,
  removeNativeBackend,
  unsupportedPlatformReason,
  verifyWithWorker,
  workerNativeDir,
  type NativeVariant,
} from './install';
import { findNpm } from './npmLocator';

/**
 * Tests only: a folder of stand-in tarballs named like `npm pack` names the real packages; the
 * command installs from there, offline, instead of from the registry.
 */
const STAND_IN_SOURCE_VARIABLE = 'PAS_NATIVE_PACKAGE_SOURCE';

type Choice = { label: string; description?: string; detail?: string; action: NativeVariant | 'remove' };

export class NativeBackend implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private installing = false;

  static register(context: vscode.ExtensionContext, host: WorkerHost): NativeBackend {
    const native = new NativeBackend(context, host);
    host.nativeDir = () => native.workerNativeDir();
    native.disposables.push(
      vscode.commands.registerCommand('pas.setUpNativeBackend', () => native.setUp()),
      vscode.commands.registerCommand('pas.removeNativeBackend', () => native.remove()),
    );
    return native;
  }

  private constructor(private readonly context: vscode.ExtensionContext, private readonly host: WorkerHost) {}

  /** Where the command installs: a folder in global storage, which extension updates keep. */
  get managedDir(): string {
    return path.join(this.context.globalStorageUri.fsPath, 'native-backend');
  }

  private configuredDir(): string | undefined {
    const configured = vscode.workspace.getConfiguration('pas').get<string>('nativeBackendDir', '').trim();
    return configured !== '' ? configured : undefined;
  }

  /** The folder the worker loads a native package from: the setting, else the managed install if there is one. */
  workerNativeDir(): string | undefined {
    return workerNativeDir(this.configuredDir(), this.managedDir);
  }

  private async setUp(): Promise<void> {
    if (this.installing) {
      void vscode.window.showInformationMessage('PaS: the native backend is being installed; see the progress notification.');
      return;
    }
    const configured = this.configuredDir();
    if (configured) {
      const open = await vscode.window.showInformationMessage(
        `PaS uses the native backend in ${configured} (setting pas.nativeBackendDir). Clear that setting to let PaS install and manage one.`,
        'Open Settings',
      );
      if (open) await vscode.commands.executeCommand('workbench.action.openSettings', 'pas.nativeBackendDir');
      return;
    }
    const version = engineTfjsVersion(this.context.extensionPath);
    const current = installedVariant(this.managedDir);
    const choices: Choice[] = [
      {
        label: 'GPU (CUDA)',
        description: `${NATIVE_PACKAGES.gpu}@${version}`,
        detail: 'NVIDIA GPU on Linux or Windows x64; needs the NVIDIA driver, CUDA 11.2 and cuDNN 8.1. Its install downloads libtensorflow for CUDA.',
        action: 'gpu',
      },
      {
        label: 'CPU (native TensorFlow, all cores)',
        description: `${NATIVE_PACKAGES.cpu}@${version}`,
        detail: 'Faster than the bundled WebAssembly backend on multi-core machines. Its install downloads libtensorflow.',
        action: 'cpu',
      },
    ];
    if (current) choices.push({ label: 'Remove the native backend', description: `installed: ${NATIVE_PACKAGES[current]}`, action: 'remove' });
    const picked = await vscode.window.showQuickPick(choices, {
      title: current ? `PaS native backend (installed: ${NATIVE_PACKAGES[current]}; picking one reinstalls)` : 'PaS native backend',
      placeHolder: 'Which TensorFlow.js native backend should the PaS worker use?',
      // The pick starts an install: it stays open when focus moves (to a browser to read about
      // CUDA, or to a panel that a finishing search updates) instead of being dismissed silently.
      ignoreFocusOut: true,
    });
    if (!picked) return;
    if (picked.action === 'remove') return this.remove();
    await this.install(picked.action, version);
  }

  private async install(variant: NativeVariant, version: string): Promise<void> {
    const packageName = NATIVE_PACKAGES[variant];
    const standInSource = process.env[STAND_IN_SOURCE_VARIABLE]?.trim() || undefined;
    const platformProblem = standInSource ? undefined : unsupportedPlatformReason(variant);
    if (platformProblem) {
      void vscode.window.showErrorMessage(`PaS: cannot install the native backend: ${platformProblem}. Searches keep using the current backend.`);
      return;
    }
    const npm = findNpm({ nodeExecutable: this.host.executable, pathVariable: process.env.PATH });
    if (!npm) {
      void vscode.window.showErrorMessage(
        'PaS: npm was not found (neither next to the Node.js that runs the worker nor on PATH). Install Node.js with npm, or set pas.nodePath to a Node.js whose installation includes npm, then run the command again.',
      );
      return;
    }
    const log = this.host.output;
    log.info(`native backend: installing ${packageName}@${version} into ${this.managedDir} with ${npm.description}`);
    this.installing = true;
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `PaS: installing ${packageName}@${version}`, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          const subscription = token.onCancellationRequested(() => abort.abort());
          try {
            return await installNativeBackend({
              npm,
              variant,
              version,
              targetDir: this.managedDir,
              spec: packageSpec(variant, version, standInSource),
              offline: standInSource !== undefined,
              signal: abort.signal,
              log: (line) => {
                log.info(`[npm] ${line}`);
                progress.report({ message: line.slice(0, 80) });
              },
              verify: (staging) => {
                progress.report({ message: 'checking that the worker loads it' });
                return verifyWithWorker({ executable: this.host.executable, cliPath: this.host.cliPath }, variant, staging);
              },
            });
          } finally {
            subscription.dispose();
          }
        },
      );
      if (result.ok) {
        log.info(`native backend: ${packageName}@${version} installed in ${result.dir}`);
        void vscode.window.showInformationMessage(`PaS: ${packageName} is installed; new searches run on it (the search panel's header shows the backend each run used).`);
      } else if (result.cancelled) {
        log.info('native backend: installation cancelled');
        void vscode.window.showInformationMessage('PaS: native backend installation cancelled; nothing was changed.');
      } else {
        log.error(`native backend: ${packageName} was not installed: ${result.reason}`);
        const fallback = installedVariant(this.managedDir) ? `the installed ${NATIVE_PACKAGES[installedVariant(this.managedDir)!]}` : 'the WebAssembly backend';
        const show = await vscode.window.showErrorMessage(`PaS: ${packageName} was not installed: ${result.reason}. Searches keep using ${fallback}.`, 'Show Log');
        if (show) this.host.showLog();
      }
    } finally {
      this.installing = false;
    }
  }

  private async remove(): Promise<void> {
    const current = installedVariant(this.managedDir);
    if (!current) {
      void vscode.window.showInformationMessage(
        this.configuredDir()
          ? `PaS did not install a native backend; pas.nativeBackendDir points at ${this.configuredDir()} (clear the setting to stop using it).`
          : 'PaS: no native backend is installed.',
      );
      return;
    }
    removeNativeBackend(this.managedDir);
    this.host.output.info(`native backend: removed ${NATIVE_PACKAGES[current]} from ${this.managedDir}`);
    void vscode.window.showInformationMessage(`PaS: removed ${NATIVE_PACKAGES[current]}; new searches use the WebAssembly backend.`);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
