/**
 * Finds npm for installing the native backend: first the npm that ships next to the Node.js that
 * runs the worker (`pas.nodePath`), so the native addon is fetched for that Node; then `npm` on
 * PATH. Nothing here imports `vscode`.
 */
import * as fs from 'fs';
import * as path from 'path';

/** How to run npm: `command ...prefixArgs <npm arguments>`. */
export interface NpmCommand {
  command: string;
  prefixArgs: string[];
  /** For the log and messages. */
  description: string;
}

export interface NpmSearch {
  /** The executable that runs the worker (a Node.js, or the editor's own runtime). */
  nodeExecutable: string;
  pathVariable: string | undefined;
  platform?: NodeJS.Platform;
  isFile?: (file: string) => boolean;
}

function defaultIsFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** npm's entry script in a Node.js installation folder (`bin/` on POSIX, the folder itself on Windows). */
function npmCliNextTo(nodeExecutable: string, platform: NodeJS.Platform, isFile: (f: string) => boolean): string | undefined {
  const pathApi = platform === 'win32' ? path.win32 : path.posix;
  const binDir = pathApi.dirname(nodeExecutable);
  const candidates =
    platform === 'win32'
      ? [pathApi.join(binDir, 'node_modules', 'npm', 'bin', 'npm-cli.js')]
      : [pathApi.join(binDir, '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'), pathApi.join(binDir, 'node_modules', 'npm', 'bin', 'npm-cli.js')];
  return candidates.find(isFile);
}

/**
 * The npm to use, or undefined when there is none (the caller says so and how to fix it).
 * Runs npm's script with a Node.js executable rather than a shell wrapper: no shell is needed
 * (spawning `npm.cmd` on Windows would need one).
 */
export function findNpm(search: NpmSearch): NpmCommand | undefined {
  const platform = search.platform ?? process.platform;
  const isFile = search.isFile ?? defaultIsFile;
  const pathApi = platform === 'win32' ? path.win32 : path.posix;
  const nextToWorkerNode = npmCliNextTo(search.nodeExecutable, platform, isFile);
  if (nextToWorkerNode) {
    return { command: search.nodeExecutable, prefixArgs: [nextToWorkerNode], description: `npm next to ${search.nodeExecutable}` };
  }
  const separator = platform === 'win32' ? ';' : ':';
  for (const dir of (search.pathVariable ?? '').split(separator).filter((d) => d.trim() !== '')) {
    if (platform === 'win32') {
      const node = pathApi.join(dir, 'node.exe');
      const cli = npmCliNextTo(node, platform, isFile);
      if (isFile(node) && cli) return { command: node, prefixArgs: [cli], description: `npm in ${dir}` };
    } else {
      const npm = pathApi.join(dir, 'npm');
      if (isFile(npm)) return { command: npm, prefixArgs: [], description: npm };
    }
  }
  return undefined;
}
