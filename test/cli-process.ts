// The command line (dist/cli.js) as a child process, for the tests that run
// it: its output collected as it comes, every wait bounded, and kill() for
// `finally`. A test file that uses it with { uid } calls
// removePackageForNobody() in afterAll.
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { bound, packageForNobody, sleep, within } from './helpers';

export const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build first (node scripts/build.js, or npm test)`);
});

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `node dist/cli.js ...`, its output collected as it comes. */
export class Cli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;

  /** launcher: a command line that runs the rest (`unshare -m ...`), node and the CLI appended to it. */
  constructor(args: string[], options: SpawnOptions = {}, launcher: string[] = []) {
    // Another uid may not reach this clone (under /root, say): it runs a copy.
    const cli = options.uid !== undefined ? path.join(packageForNobody(), 'dist', 'cli.js') : CLI;
    const argv = [...launcher, process.execPath, cli, ...args];
    this.child = spawn(argv[0], argv.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d; });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => resolve({ code, signal }));
    });
    this.exited.catch(() => undefined);  // observed by exit(); no unhandled rejection meanwhile
  }

  /** Complete stdout lines so far. */
  get lines(): string[] {
    return this.stdout.split('\n').slice(0, -1);
  }

  /** Waits until `probe` returns something other than undefined; fails after ms. */
  async waitFor<T>(probe: () => T | undefined, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + bound(ms);
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline || this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${what}: not seen within ${ms} ms (exit ${this.child.exitCode}, signal ${this.child.signalCode})\n` +
          `stdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await sleep(20);
    }
  }

  /** Waits for stderr to say the filesystem mounted at mountPoint is watched. */
  watching(mountPoint: string, ms = 5000): Promise<true> {
    return this.waitFor(() => (this.stderr.includes(` on ${mountPoint} (fsid `) ? true : undefined), ms, `watching ${mountPoint}`);
  }

  exit(ms = 10_000): Promise<Exit> {
    return within(ms, this.exited, `fanotify ${this.child.spawnargs.slice(2).join(' ')}`);
  }

  /** For finally: kills the child if it is still running and waits (bounded) for it. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await within(5000, this.exited, 'killed child').catch(() => undefined);
    }
  }
}

/** Runs a short command to its end. */
export async function run(args: string[], options: SpawnOptions = {}): Promise<Cli & Exit> {
  const cli = new Cli(args, options);
  try {
    const exit = await cli.exit();
    return Object.assign(cli, exit);
  } finally {
    await cli.kill();
  }
}
