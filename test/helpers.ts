// Shared by the test files: privileged tests run as root, and always when
// CI=true (where failing beats skipping); elsewhere they skip with one line.
import * as fs from 'node:fs';

export const privileged = process.getuid?.() === 0 || process.env.CI === 'true';

/** describe() for tests that need root; prints one line when skipped. */
export function describeRoot(name: string, fn: () => void): void {
  if (!privileged) {
    console.log(`${name}: skipped, needs root (CAP_SYS_ADMIN); CI=true forces it`);
    describe.skip(name, fn);
    return;
  }
  describe(name, fn);
}

/** How many fds this process has open. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Resolves after ms. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects when p takes longer than ms: tests must never hang on the kernel. */
export function within<T>(ms: number, p: Promise<T>, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * The error a call gives for a feature this kernel lacks: one code, naming
 * the feature, the release that brought it and the kernel running.
 */
export function expectUnsupported(fn: () => unknown, feature: string): void {
  let err: (Error & Record<string, unknown>) | undefined;
  try {
    fn();
  } catch (e) {
    err = e as typeof err;
  }
  expect(err).toBeDefined();
  expect(err).toMatchObject({
    code: 'ERR_FANOTIFY_UNSUPPORTED', feature, kernel: require('node:os').release(),
    requires: expect.stringMatching(/^\d+\.\d+/), errno: expect.any(Number), syscall: expect.any(String),
  });
  expect(err!.message).toMatch(/needs Linux \d+\.\d+/);
  expect(err!.message).toContain(require('node:os').release());
}

let nobodyCopy: string | null = null;

/**
 * A copy of the built package that uid 65534 can read, for tests that run it
 * unprivileged: the clone may sit under a 0700 directory (/root), which
 * nobody else can enter. A test file that uses it calls removePackageForNobody() in afterAll.
 */
export function packageForNobody(): string {
  if (nobodyCopy !== null) return nobodyCopy;
  const os = require('node:os') as typeof import('node:os');
  const path = require('node:path') as typeof import('node:path');
  const root = path.join(__dirname, '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-nobody-'));
  const copy = (rel: string) => fs.cpSync(path.join(root, rel), path.join(dir, rel), { recursive: true });
  for (const rel of ['package.json', 'dist', 'build/Release/fanotify.node', 'node_modules/node-gyp-build']) copy(rel);
  const open = (p: string): void => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.mode | (st.isDirectory() || st.mode & 0o100 ? 0o555 : 0o444));
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  nobodyCopy = dir;
  return dir;
}

export function removePackageForNobody(): void {
  if (nobodyCopy !== null) fs.rmSync(nobodyCopy, { recursive: true, force: true });
  nobodyCopy = null;
}
