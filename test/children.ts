// Child processes for tests, each with a kill timer so that nothing can wait
// forever, and killAll() for afterEach.
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';

import { within } from './helpers';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** ms from spawn to 'close' */
  ms: number;
  timedOut: boolean;
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** Date.now() at spawn */
  startedAt: number;
  result: Promise<ChildResult>;
  /** stdout so far */
  out(): string;
  running(): boolean;
}

const live = new Map<ChildProcess, Promise<ChildResult>>();

/** Spawns cmd (stdin ignored, output collected); SIGKILLs it after killAfterMs. */
export function start(cmd: string, args: string[], killAfterMs = 20_000, options: SpawnOptions = {}): Started {
  const startedAt = Date.now();
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, killAfterMs);
  const result = new Promise<ChildResult>((resolve) => {
    child.on('error', () => undefined);  // reported through 'close'
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - startedAt, timedOut });
    });
  });
  live.set(child, result);
  if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  return {
    child,
    pid: child.pid,
    startedAt,
    result,
    out: () => stdout,
    running: () => child.exitCode === null && child.signalCode === null,
  };
}

/** Kills every child still running and waits (bounded) until they are gone. */
export async function killAll(): Promise<void> {
  const waits = [...live.entries()].map(([child, result]) => {
    child.kill('SIGKILL');
    return result;
  });
  await within(5000, Promise.all(waits), 'killed children').catch(() => undefined);
}
