import { spawn, spawnSync, SpawnSyncReturns } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { WorkerEvent } from '../../src/shared/workerProtocol';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

/** Runs the built CLI (npm test builds it first) and returns its result. */
export function runCli(args: string[], options: { cwd?: string; timeoutMs?: number; nodeArgs?: string[] } = {}): SpawnSyncReturns<string> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run 'node esbuild.js' first`);
  return spawnSync(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], { encoding: 'utf8', cwd: options.cwd ?? REPO_ROOT, timeout: options.timeoutMs ?? 300_000 });
}

/** The JSON events of a --json run's stdout. */
export function parseEvents(stdout: string): WorkerEvent[] {
  return stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as WorkerEvent);
}

/**
 * Starts the CLI with --json and sends it `signal` (SIGKILL by default) `delayMs` after the first
 * event `killWhen` accepts (unless it has exited by then).
 * Resolves with the events seen.
 */
export function runCliAndKill(
  args: string[],
  killWhen: (event: WorkerEvent) => boolean,
  signal: NodeJS.Signals = 'SIGKILL',
  delayMs = 0,
): Promise<{ events: WorkerEvent[]; killed: boolean; exitCode: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: WorkerEvent[] = [];
    let buffer = '';
    let armed = false;
    let killed = false;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (!line.startsWith('{')) continue;
        const event = JSON.parse(line) as WorkerEvent;
        events.push(event);
        if (!armed && killWhen(event)) {
          armed = true;
          const kill = () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            killed = true;
            child.kill(signal);
          };
          if (delayMs > 0) setTimeout(kill, delayMs);
          else kill();
        }
      }
    });
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ events, killed, exitCode, stderr }));
  });
}

/** sha256 of every file under a folder, by relative path: a fingerprint to show nothing changed. */
export function fingerprintFolder(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else result[path.relative(dir, full)] = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return result;
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(require('os').tmpdir(), prefix));
}
