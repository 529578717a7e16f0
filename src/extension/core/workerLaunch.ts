/**
 * Where and how the worker process starts. Pure (no vscode import), so a unit test can check it.
 *
 * The manifest declares `extensionKind: ["workspace"]`: over VS Code Remote (SSH, containers,
 * WSL, Codespaces) the extension host, and so this code, runs on the machine that holds the
 * workspace. Every path below comes from that host process (its extension folder, its own Node
 * executable), never from the UI side, so the worker trains where the data and a GPU are.
 */
import * as path from 'path';

export interface WorkerLaunch {
  executable: string;
  /** The CLI bundle first, then the command's arguments. */
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export function workerLaunch(host: {
  /** The installed extension's folder on the extension host's machine (context.extensionPath). */
  extensionPath: string;
  /** The extension host's own executable (process.execPath). */
  hostExecutable: string;
  /** The `pas.nodePath` setting ('' = unset). */
  configuredNode: string;
  env: NodeJS.ProcessEnv;
  args: string[];
  cwd?: string;
}): WorkerLaunch {
  const configured = host.configuredNode.trim();
  return {
    executable: configured !== '' ? configured : host.hostExecutable,
    args: [path.join(host.extensionPath, 'dist', 'cli.js'), ...host.args],
    cwd: host.cwd ?? host.extensionPath,
    // Electron (desktop VS Code's host) runs as plain Node with this; Node ignores it.
    env: { ...host.env, ELECTRON_RUN_AS_NODE: '1' },
  };
}
