// Shared by the test files: privileged tests run as root, and always when
// CI=true (where failing beats skipping); elsewhere they skip with one line.
import * as fs from 'node:fs';
import * as os from 'node:os';

import { Feature, lacks } from '../lib/kernel/capabilities';

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

/**
 * How much longer than here the test bounds may take: they guard against
 * hangs, not speed, and under emulation (the kernel matrix boots each kernel
 * in qemu without KVM) everything takes a few times longer.
 */
export const TIME_SCALE = Math.max(1, Number(process.env.FANOTIFY_TEST_TIME_SCALE) || 1);

/** A bound in ms, scaled for emulation. */
export const bound = (ms: number): number => ms * TIME_SCALE;

/** Rejects when p takes longer than ms (scaled): tests must never hang on the kernel. */
export function within<T>(ms: number, p: Promise<T>, what = 'operation'): Promise<T> {
  ms = bound(ms);
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

// For each feature that cannot be emulated, what a test asserts instead on a
// kernel without it: the typed error at the call that asks for it.
const WHERE_LACKING: Partial<Record<Feature, () => Promise<void>>> = {
  preAccess: async () => {
    const { Fanotify } = await import('../lib');
    await using fan = new Fanotify({ class: 'pre-content' });
    expectUnsupported(() => fan.add(os.tmpdir(), ['preAccess']), 'preAccess');
  },
  denyErrno: async () => {
    const { Fanotify } = await import('../lib');
    expectUnsupported(() => new Fanotify({ class: 'pre-content', permission: { default: { deny: 'EIO' } } }), 'denyErrno');
  },
  reportMount: async () => {
    const { Fanotify } = await import('../lib');
    expectUnsupported(() => new Fanotify({ report: { mount: true } }), 'reportMount');
  },
  mntnsMark: async () => {
    const { Fanotify } = await import('../lib');
    await using fan = new Fanotify();
    expectUnsupported(() => fan.add(undefined, ['open'], { scope: 'mntns' }), 'mntnsMark');
  },
  auditRule: async () => {
    // Checked at respond(), which needs a permission event: test/unsupported.test.ts has that one.
    const { has } = await import('../lib/kernel/capabilities');
    expect(has('auditRule')).toBe(false);
  },
  markIgnore: async () => {
    const { Fanotify } = await import('../lib');
    await using fan = new Fanotify();
    expectUnsupported(() => fan.add(os.tmpdir(), ['open'], { ignore: true }), 'markIgnore');
  },
  evictable: async () => {
    const { Fanotify } = await import('../lib');
    await using fan = new Fanotify();
    expectUnsupported(() => fan.add(os.tmpdir(), ['open'], { evictable: true }), 'evictable');
  },
  reportFdError: async () => {
    const { Fanotify } = await import('../lib');
    expectUnsupported(() => new Fanotify({ report: { fdError: true } }), 'reportFdError');
  },
};

/** The features of a list this kernel lacks (as root; unknown counts as present). */
function lacking(features: Feature[]): Feature[] {
  return privileged ? features.filter((f) => lacks(f)) : [];
}

/**
 * A test of features the kernel may lack. Where it has them, `fn` runs (and
 * fails if they do not work); where it lacks one, the test asserts the typed
 * error instead, and its name says so: never a silent skip. `instead`, when
 * given, is that assertion (say, that a program ends with the error).
 */
export function testFeature(
  features: Feature | Feature[], name: string, fn: () => unknown, timeout?: number,
  instead?: (missing: Feature[]) => unknown,
): void {
  const missing = lacking(Array.isArray(features) ? features : [features]);
  if (missing.length === 0) {
    test(name, fn as () => Promise<void>, timeout);
    return;
  }
  test(`${name} [this kernel lacks ${missing.join(', ')}: asserts ERR_FANOTIFY_UNSUPPORTED]`, async () => {
    if (instead) return void (await instead(missing));
    for (const f of missing) {
      const check = WHERE_LACKING[f];
      if (!check) throw new Error(`no check for a kernel without ${f}`);
      await check();
    }
  }, timeout);
}

/** describeRoot() for a suite that needs a feature: where the kernel lacks it, one test of the typed error. */
export function describeFeature(feature: Feature, name: string, fn: () => void): void {
  if (lacking([feature]).length === 0) {
    describeRoot(name, fn);
    return;
  }
  describe(name, () => testFeature(feature, 'the calls that need it', () => undefined));
}
