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
