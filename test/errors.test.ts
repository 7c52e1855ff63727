// Bad inputs: every one must fail with a typed error (section 7 of API.md).
// Bad options and arguments are TypeErrors with code ERR_INVALID_ARG_VALUE,
// thrown before the kernel is asked; what only the kernel can refuse comes back
// with the kernel's code, a negative errno (as node:fs), the syscall, the path
// where one applies, and a message that says what to do.
//
// The permission tests spawn a child (`cat`) that blocks in open() until we
// answer: each is bounded by within(), and its group is closed in `finally`,
// which answers whatever is still pending with the default ('allow').
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Fanotify, FanotifyEvent, FanotifyOptions, MarkOptions, resolve } from '../lib';
import { Feature, lacks } from '../lib/kernel/capabilities';
import { LoopImage } from '../lib/testing';
import { bound, describeRoot, sleep, testFeature, within } from './helpers';

jest.setTimeout(bound(20_000));

const { EINVAL, ENOENT, EIO } = os.constants.errno;

interface ErrorShape {
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  message: string;
}

/** The error fn throws; fails the test when it returns. */
function caught(fn: () => unknown): ErrorShape & Error {
  try {
    const result = fn();
    if (result instanceof Fanotify) void result.close();  // no group leaks from a failed test
  } catch (err) {
    return err as ErrorShape & Error;
  }
  throw new Error('expected a throw, but the call returned');
}

/** A TypeError ERR_INVALID_ARG_VALUE naming `arg`, whose message matches `advice`. */
function expectInvalidArg(fn: () => unknown, arg: string, advice: RegExp): ErrorShape & Error {
  const err = caught(fn);
  expect(err).toBeInstanceOf(TypeError);
  expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
  expect(err.message).toContain(`'${arg}'`);
  expect(err.message).toMatch(advice);
  return err;
}

// Values of the wrong type, for the TypeScript-typed entry points.
const opts = (o: unknown) => o as FanotifyOptions;
const markOpts = (o: unknown) => o as MarkOptions;
const anyValue = <T>(v: unknown) => v as T;

let tmp: string;
let file: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-errors-'));
  file = path.join(tmp, 'file.txt');
  fs.writeFileSync(file, 'hello');
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('group options (TypeError before fanotify_init)', () => {
  test('bad class', () => {
    expectInvalidArg(() => new Fanotify(opts({ class: 'bogus' })), 'options.class', /must be 'notification', 'content' or 'pre-content'/);
  });

  test('options not an object', () => {
    expectInvalidArg(() => new Fanotify(opts(5)), 'options', /must be an object/);
    expectInvalidArg(() => new Fanotify(opts(null)), 'options', /must be an object/);
  });

  test('unknown option key', () => {
    const err = expectInvalidArg(() => new Fanotify(opts({ reportFid: true })), 'options.reportFid', /is not an option/);
    expect(err.message).toContain('report');  // lists the known keys
  });

  test('report not an object', () => {
    expectInvalidArg(() => new Fanotify(opts({ report: 'fid' })), 'options.report', /must be an object/);
    expectInvalidArg(() => new Fanotify(opts({ report: ['fid'] })), 'options.report', /must be an object/);
  });

  test('unknown report key, report flag not a boolean', () => {
    expectInvalidArg(() => new Fanotify(opts({ report: { fids: true } })), 'options.report.fids', /is not an option.*fid/);
    expectInvalidArg(() => new Fanotify(opts({ report: { fid: 1 } })), 'options.report.fid', /must be a boolean/);
  });

  test('report.name without dirFid', () => {
    expectInvalidArg(() => new Fanotify({ report: { fid: true, name: true } }), 'options.report.name', /needs report\.dirFid/);
  });

  test('report.targetFid without fid, dirFid and name', () => {
    expectInvalidArg(() => new Fanotify({ report: { dirFid: true, name: true, targetFid: true } }), 'options.report.targetFid', /needs report\.fid/);
  });

  test('bad timeoutMs', () => {
    for (const timeoutMs of [-1, NaN, '100', {}]) {
      expectInvalidArg(() => new Fanotify(opts({ class: 'content', permission: { timeoutMs } })), 'options.permission.timeoutMs', /must be a number >= 0/);
    }
  });

  test('bad default decision', () => {
    expectInvalidArg(() => new Fanotify(opts({ class: 'content', permission: { default: 'maybe' } })), 'options.permission.default', /must be 'allow', 'deny' or \{ deny: errno \}/);
    expectInvalidArg(() => new Fanotify(opts({ class: 'content', permission: { default: { deny: 'ENOENT' } } })), 'options.permission.default.deny', /must be one of EIO, EPERM/);
    expectInvalidArg(() => new Fanotify(opts({ class: 'content', permission: { default: { deny: 'EIO' } } })), 'options.permission.default.deny', /needs class 'pre-content'/);
  });

  test('unknown permission key, permission not an object', () => {
    expectInvalidArg(() => new Fanotify(opts({ class: 'content', permission: { timeout: 5 } })), 'options.permission.timeout', /is not an option.*timeoutMs/);
    expectInvalidArg(() => new Fanotify(opts({ class: 'content', permission: true })), 'options.permission', /must be an object/);
  });

  test('bad eventFileFlags', () => {
    for (const eventFileFlags of ['x', 'read', -1, 1.5, true]) {
      expectInvalidArg(() => new Fanotify(opts({ eventFileFlags })), 'options.eventFileFlags', /must be 'r', 'w', 'rw' or a non-negative O_\* number/);
    }
  });

  test('boolean options that are not booleans', () => {
    expectInvalidArg(() => new Fanotify(opts({ unlimitedQueue: 'yes' })), 'options.unlimitedQueue', /must be a boolean/);
    expectInvalidArg(() => new Fanotify(opts({ audit: 1 })), 'options.audit', /must be a boolean/);
  });
});

describe('resolve() arguments', () => {
  test('resolve() with a non-FileId rejects with a TypeError', async () => {
    for (const bad of [undefined, null, {}, 'abc:def', { fsid: 'a:b', handleType: 1, handle: [1, 2] }]) {
      const err = await resolve(anyValue(bad)).then(() => undefined, (e: unknown) => e as ErrorShape);
      expect(err).toBeInstanceOf(TypeError);
      expect(err!.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(err!.message).toMatch(/'fileId' must be a FileId/);
    }
  });

  test('resolve() with a name containing "/" rejects with a TypeError', async () => {
    const id = { fsid: '00000000:00000000', handleType: 1, handle: Buffer.alloc(8) };
    await expect(resolve(id, { name: 'a/b' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' });
  });
});

// ---- errors from the kernel --------------------------------------------------
//
// Each case is a function of (Fanotify, dir) that should throw what the kernel
// said, in the public shape. They run twice: in a plain Node process (the
// library's own realm, as a program would use it), and here, inside jest's vm
// context, where the native addon's errors come from another realm.

interface KernelCase {
  name: string;
  run: string;  // body of (Fanotify, dir) => void, as source for the child process
  want: { code: string; errno: number; syscall: string; path?: (dir: string) => string; advice: RegExp };
  /** A kernel without this feature throws ERR_FANOTIFY_UNSUPPORTED for it instead (same syscall and path). */
  needs?: Feature;
}

const KERNEL_CASES: KernelCase[] = [
  {
    name: 'pre-content class with report.fid: EINVAL from fanotify_init',
    run: "new Fanotify({ class: 'pre-content', report: { fid: true } })",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_init', advice: /pre-content and content classes cannot report fid/ },
  },
  {
    name: 'content class with report.fid: EINVAL from fanotify_init',
    run: "new Fanotify({ class: 'content', report: { fid: true } })",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_init', advice: /cannot report fid/ },
  },
  {
    name: 'report.mount with report.fid: EINVAL from fanotify_init',
    run: 'new Fanotify({ report: { mount: true, fid: true } })',
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_init', advice: /report\.mount cannot combine with fid/ },
    needs: 'reportMount',
  },
  {
    name: 'nonexistent path: ENOENT with the path',
    run: "const f = new Fanotify(); try { f.add(dir + '/missing/x', ['open']); } finally { f.close(); }",
    want: { code: 'ENOENT', errno: ENOENT, syscall: 'fanotify_mark', path: (d) => `${d}/missing/x`, advice: /the path does not exist/ },
  },
  {
    name: 'preAccess in a content group: EINVAL from fanotify_mark with a hint',
    run: "const f = new Fanotify({ class: 'content' }); try { f.add(dir, ['preAccess']); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /preAccess needs "pre-content"/ },
    needs: 'preAccess',
  },
  {
    name: 'preAccess in a notification group: EINVAL from fanotify_mark with a hint',
    run: "const f = new Fanotify(); try { f.add(dir, ['preAccess']); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /preAccess needs "pre-content"/ },
    needs: 'preAccess',
  },
  {
    name: 'create in a group without report.fid: EINVAL naming report.fid',
    run: "const f = new Fanotify(); try { f.add(dir, ['create', 'onDir']); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /carry no fd, so only a group that reports file ids .*report: \{ fid: true/ },
  },
  {
    name: 'delete on a mount mark of a fid group: EINVAL naming the scope',
    run: "const f = new Fanotify({ report: { fid: true } }); try { f.add(dir, ['delete'], { scope: 'mount' }); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /a mount mark sees only events with an fd/ },
  },
  {
    name: 'openPerm in a notification group: EINVAL with a hint',
    run: "const f = new Fanotify(); try { f.add(dir, ['openPerm']); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /permission events need class "content" or "pre-content"/ },
  },
  {
    name: 'mntns scope on a path that is not nsfs: EINVAL from fanotify_mark',
    run: "const f = new Fanotify({ report: { mount: true } }); try { f.add(dir, ['mntAttach', 'mntDetach'], { scope: 'mntns' }); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /not a mount namespace \(nsfs\) file/ },
    needs: 'reportMount',
  },
  {
    name: 'fsError without report.fid: EINVAL from fanotify_mark',
    run: "const f = new Fanotify(); try { f.add(dir, ['fsError'], { scope: 'filesystem' }); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /only a group that reports file ids .*fsError: report\.fid and scope "filesystem"/ },
  },
  {
    name: 'mntAttach on an inode mark: EINVAL from fanotify_mark',
    run: "const f = new Fanotify({ report: { mount: true } }); try { f.add(dir, ['mntAttach']); } finally { f.close(); }",
    want: { code: 'EINVAL', errno: EINVAL, syscall: 'fanotify_mark', path: (d) => d, advice: /mntAttach\/mntDetach need report\.mount and scope "mntns"/ },
    needs: 'reportMount',
  },
];

interface SerializedError {
  threw: boolean;
  isError?: boolean;
  isTypeError?: boolean;
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
  message?: string;
}

function serialize(fn: () => void): SerializedError {
  try {
    fn();
    return { threw: false };
  } catch (err) {
    const e = err as ErrorShape;
    return {
      threw: true, isError: err instanceof Error, isTypeError: err instanceof TypeError,
      code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, message: e.message,
    };
  }
}

/**
 * Runs the cases in a plain Node process, loading lib/*.ts through a minimal
 * TypeScript require hook (no vm context in between, unlike jest).
 */
function runInPlainNode(dir: string): Record<string, SerializedError> {
  const libIndex = path.join(__dirname, '..', 'lib', 'index.ts');
  const script = `
    const fs = require('node:fs');
    const ts = require(${JSON.stringify(require.resolve('typescript'))});
    require.extensions['.ts'] = (m, file) => {
      const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        fileName: file,
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      });
      m._compile(out.outputText, file);
    };
    const { Fanotify } = require(${JSON.stringify(libIndex)});
    const dir = ${JSON.stringify(dir)};
    const cases = {
      ${KERNEL_CASES.map((c) => `${JSON.stringify(c.name)}: () => { ${c.run}; }`).join(',\n      ')}
    };
    const serialize = ${serialize.toString()};
    const out = {};
    for (const [name, fn] of Object.entries(cases)) out[name] = serialize(fn);
    process.stdout.write(JSON.stringify(out));
  `;
  // A bound against a hang, not a speed limit: under emulation (the kernel matrix) this takes a while.
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`the plain Node run failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, SerializedError>;
}

function checkKernelError(got: SerializedError, c: KernelCase, dir: string): void {
  const want = c.want;
  expect(got.threw).toBe(true);
  if (c.needs && lacks(c.needs)) {
    // This kernel lacks what the call asks for: that is the error, not the combination.
    expect(got).toMatchObject({ isError: true, code: 'ERR_FANOTIFY_UNSUPPORTED', syscall: expect.stringMatching(/^fanotify_/) });
    expect(got.message).toMatch(/needs Linux \d+\.\d+/);
    return;
  }
  expect(got.isError).toBe(true);
  expect(got.isTypeError).toBe(false);
  expect(got.code).toBe(want.code);
  expect(got.errno).toBe(-want.errno);  // negative, as node:fs
  expect(got.syscall).toBe(want.syscall);
  expect(got.path).toBe(want.path?.(dir));
  expect(got.message).toContain(want.code);
  expect(got.message).toContain(want.syscall);
  expect(got.message).toMatch(want.advice);
}

describeRoot('kernel errors (need root)', () => {
  let plain: Record<string, SerializedError>;
  beforeAll(() => {
    plain = runInPlainNode(tmp);
  }, 150_000);

  describe('in a plain Node process', () => {
    for (const c of KERNEL_CASES) {
      test(c.name, () => {
        checkKernelError(plain[c.name], c, tmp);
      });
    }
  });

  // Errors the addon creates belong to the main realm, not jest's vm context:
  // fromNative must recognise them by shape, not instanceof.
  describe("inside jest's vm context (errors from the addon cross a realm)", () => {
    for (const c of KERNEL_CASES) {
      test(c.name, () => {
        // eslint-disable-next-line no-new-func
        const fn = new Function('Fanotify', 'dir', c.run) as (F: typeof Fanotify, d: string) => void;
        checkKernelError(serialize(() => fn(Fanotify, tmp)), c, tmp);
      });
    }
  });

  testFeature('mntnsMark', 'the default mntns path, /proc/self/ns/mnt, is accepted', () => {
    const fan = new Fanotify({ report: { mount: true } });
    try {
      expect(fan.add(undefined, ['mntAttach', 'mntDetach'], { scope: 'mntns' })).toBe(fan);
    } finally {
      fan.close();
    }
  });
});

describeRoot('mark arguments (need a group)', () => {
  let fan: Fanotify;
  beforeEach(() => {
    fan = new Fanotify();
  });
  afterEach(async () => {
    await fan.close();
  });

  test('bad event name', () => {
    expectInvalidArg(() => fan.add(tmp, anyValue(['open', 'opened'])), 'events', /is not an event name \(known: .*closeWrite/);
    expectInvalidArg(() => fan.add(tmp, anyValue([42])), 'events', /is not an event name/);
  });

  test('empty events array', () => {
    expectInvalidArg(() => fan.add(tmp, []), 'events', /must name at least one event/);
  });

  test('events neither an array nor a number', () => {
    expectInvalidArg(() => fan.add(tmp, anyValue('open')), 'events', /must be an array of event names or a number mask/);
  });

  test('negative or fractional mask', () => {
    expectInvalidArg(() => fan.add(tmp, -1), 'events', /must be a non-negative integer mask/);
    expectInvalidArg(() => fan.add(tmp, 1.5), 'events', /must be a non-negative integer mask/);
  });

  test('bad scope', () => {
    expectInvalidArg(() => fan.add(tmp, ['open'], markOpts({ scope: 'superblock' })), 'options.scope', /must be 'inode', 'mount', 'filesystem' or 'mntns'/);
    expectInvalidArg(() => fan.flush(anyValue('everything')), 'options.scope', /must be 'inode'/);
  });

  test('unknown mark option, mark option not a boolean', () => {
    expectInvalidArg(() => fan.add(tmp, ['open'], markOpts({ recursive: true })), 'options.recursive', /is not an option/);
    expectInvalidArg(() => fan.add(tmp, ['open'], markOpts({ onlyDir: 'yes' })), 'options.onlyDir', /must be a boolean/);
    expectInvalidArg(() => fan.add(tmp, ['open'], markOpts('inode')), 'options', /must be an object/);
  });

  test('ignoreSurviveModify without ignore', () => {
    expectInvalidArg(() => fan.add(tmp, ['modify'], { ignoreSurviveModify: true }), 'options.ignoreSurviveModify', /only applies with ignore: true/);
  });

  test("path '' and a path with NUL", () => {
    expectInvalidArg(() => fan.add('', ['open']), 'path', /must be a non-empty string, a file URL or an fd/);
    expectInvalidArg(() => fan.add(`${tmp}\0/x`, ['open']), 'path', /must be a non-empty string/);
  });

  test('path missing for an inode mark, path of a wrong type, negative fd', () => {
    expectInvalidArg(() => fan.add(anyValue(undefined), ['open']), 'path', /only scope 'mntns' has a default/);
    expectInvalidArg(() => fan.add(anyValue({ path: tmp }), ['open']), 'path', /must be a non-empty string/);
    expectInvalidArg(() => fan.add(-3, ['open']), 'path', /must be an open fd/);
  });

  test('AbortSignal that is not an AbortSignal', () => {
    expectInvalidArg(() => fan.events(anyValue({ signal: { aborted: false } })), 'options.signal', /must be an AbortSignal/);
    expectInvalidArg(() => fan.events(anyValue({ signal: new AbortController() })), 'options.signal', /must be an AbortSignal/);
  });

  test('add, remove and flush on a closed group: ERR_FANOTIFY_CLOSED', async () => {
    await fan.close();
    expect(fan.closed).toBe(true);
    for (const call of [() => fan.add(tmp, ['open']), () => fan.remove(tmp, ['open']), () => fan.flush()]) {
      const err = caught(call);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('ERR_FANOTIFY_CLOSED');
      expect(err.message).toMatch(/the fanotify group is closed/);
    }
  });
});

// ---- permission events -----------------------------------------------------

interface Child {
  proc: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** `cat file` in a child: its open() is what the group gets to answer. */
function catFile(target: string): Child {
  const proc = spawn('cat', [target], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
    proc.on('error', rej);
    proc.on('close', (code) => res({ code, stdout, stderr }));
  });
  return { proc, done };
}

/**
 * The event of the child (events of other processes are skipped). `first` is
 * an it.next() called before the child was started: a read that finds the
 * kernel queue empty leaves the reading to the group's reader thread, which
 * files the event with its timeout (see the race test below for the other way).
 */
async function eventOf(
  it: AsyncIterator<FanotifyEvent>, first: Promise<IteratorResult<FanotifyEvent>>, pid: number | undefined,
): Promise<FanotifyEvent> {
  for (let next = first; ; next = it.next()) {
    const r = await within(5000, next, 'the event of the child');
    if (r.done) throw new Error('the iterator ended before the child event');
    if (r.value.pid === pid) return r.value;
  }
}

function kill(child: Child | undefined): void {
  if (child && child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
}

describeRoot('responding to events (need root)', () => {
  test('respond(): bad decisions are TypeErrors, a second answer is ERR_ALREADY_RESPONDED', async () => {
    const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 10_000, default: 'allow' } });
    let child: Child | undefined;
    try {
      fan.add(file, ['openPerm']);
      const it = fan.events();
      const first = it.next();
      child = catFile(file);
      const ev = await eventOf(it, first, child.proc.pid);
      expect(ev.events).toEqual(['openPerm']);

      // The kernel refuses ENOENT in FAN_DENY_ERRNO: caught before it is asked.
      expectInvalidArg(() => ev.respond({ deny: 'ENOENT' }), 'decision.deny', /must be one of EIO, EPERM, EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT/);
      expectInvalidArg(() => ev.respond({ deny: 9999 }), 'decision.deny', /must be one of/);
      // EIO is a deny errno the kernel accepts, but only in pre-content groups.
      expectInvalidArg(() => ev.respond({ deny: 'EIO' }), 'decision.deny', /needs class 'pre-content'/);
      expectInvalidArg(() => ev.respond(anyValue('maybe')), 'decision', /must be 'allow', 'deny' or \{ deny: errno \}/);
      // audit needs the group option audit: true (FAN_ENABLE_AUDIT).
      expectInvalidArg(() => ev.respond('allow', { audit: true }), 'options.audit', /needs the group option audit: true/);
      expectInvalidArg(() => ev.respond('allow', anyValue('audit')), 'options', /must be an object/);

      // None of those answered the event: the first real answer goes through.
      ev.respond('allow');
      const err = caught(() => ev.respond('allow'));
      expect(err.code).toBe('ERR_ALREADY_RESPONDED');
      expect(err.message).toMatch(/respond\(\) may be called once/);
      expect(caught(() => ev.respond('deny')).code).toBe('ERR_ALREADY_RESPONDED');

      const result = await within(5000, child.done, 'cat');
      expect(result).toMatchObject({ code: 0, stdout: 'hello' });
    } finally {
      await fan.close();  // answers anything pending with 'allow'
      kill(child);
    }
  });

  test('an answer after the timeout answered it: ERR_ALREADY_RESPONDED', async () => {
    const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 100, default: 'allow' } });
    let child: Child | undefined;
    try {
      fan.add(file, ['openPerm']);
      const it = fan.events();
      const first = it.next();
      child = catFile(file);
      const ev = await eventOf(it, first, child.proc.pid);
      // The native layer answers 'allow' after 100 ms, even though we hold the event.
      const result = await within(5000, child.done, 'cat after the timeout');
      expect(result).toMatchObject({ code: 0, stdout: 'hello' });
      await sleep(50);
      const err = caught(() => ev.respond('deny'));
      expect(err.code).toBe('ERR_ALREADY_RESPONDED');
      expect(err.message).toMatch(/already answered with the default/);
    } finally {
      await fan.close();
      kill(child);
    }
  });

  // A permission event read on the JS thread (next()'s fast path) is filed
  // with its deadline; the reader thread must be woken to honour it, or it
  // sleeps in poll() and the opener waits until another event or close().
  // Spinning on the native read() makes the JS thread read every event.
  test('the timeout answers a permission event that the JS thread read', async () => {
    const { binding } = require('../lib/core/binding') as typeof import('../lib/core/binding');
    const C = binding.constants;
    let jsThreadRead = 0;
    for (let i = 0; i < 5 && jsThreadRead === 0; i++) {
      const group = new binding.Group(
        C.FAN_CLASS_CONTENT, 0o2000000 /* O_RDONLY | O_CLOEXEC */,
        { permissionClass: true, allowSelf: true, timeoutMs: 50, defaultResponse: C.FAN_ALLOW, bufferSize: 4096 },
        () => undefined,  // batches the reader thread hands over: answered by close()
      );
      let child: Child | undefined;
      try {
        binding.mark(group.fd, C.FAN_MARK_ADD, C.FAN_OPEN_PERM, -100 /* AT_FDCWD */, file);
        child = catFile(file);
        let batch: unknown;
        for (const until = Date.now() + 2000; batch === undefined && Date.now() < until;) batch = group.read();
        if (batch === undefined) continue;  // the reader thread won this time: try again
        jsThreadRead++;
        // Nobody answers: the 50 ms timeout must.
        const result = await within(2000, child.done, 'cat, whose event the timeout should have answered');
        expect(result.code).toBe(0);
      } finally {
        group.close();  // answers what is pending
        kill(child);
        if (child) await within(5000, child.done, 'cat after close()');
      }
    }
    expect(jsThreadRead).toBeGreaterThan(0);
  });

  test('respond() to a non-permission event: ERR_NOT_PERMISSION_EVENT', async () => {
    const fan = new Fanotify();
    let child: Child | undefined;
    try {
      fan.add(file, ['open']);
      const it = fan.events();
      const first = it.next();
      child = catFile(file);
      const ev = await eventOf(it, first, child.proc.pid);
      expect(ev.events).toEqual(['open']);
      const err = caught(() => ev.respond('allow'));
      expect(err.code).toBe('ERR_NOT_PERMISSION_EVENT');
      expect(err.message).toMatch(/only for permission events; this one is open/);
      await within(5000, child.done, 'cat');
    } finally {
      await fan.close();
      kill(child);
    }
  });

  testFeature('denyErrno', '{ deny: "EIO" } is accepted in a pre-content group and the opener gets EIO', async () => {
    // On ext4: pre-content groups need a filesystem that has pre-content support (tmpfs has none).
    await using img = await LoopImage.create({ sizeMiB: 32 });
    const onExt4 = path.join(img.mountPoint, 'f');
    fs.writeFileSync(onExt4, 'hello');
    const fan = new Fanotify({ class: 'pre-content', permission: { timeoutMs: 10_000, default: 'allow' } });
    let child: Child | undefined;
    try {
      fan.add(onExt4, ['openPerm']);
      const it = fan.events();
      const first = it.next();
      child = catFile(onExt4);
      const ev = await eventOf(it, first, child.proc.pid);
      expect(() => ev.respond({ deny: EIO })).not.toThrow();
      const result = await within(5000, child.done, 'cat');
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/Input\/output error/);
    } finally {
      await fan.close();
      kill(child);
    }
  });
});

describe('respond() on an event without a group', () => {
  test('a decoded event that is not a permission event: ERR_NOT_PERMISSION_EVENT', () => {
    // One FAN_OPEN event with FAN_NOFD, as the kernel would write it.
    const bytes = Buffer.alloc(24);
    bytes.writeUInt32LE(24, 0);
    bytes.writeUInt8(3, 4);
    bytes.writeUInt16LE(24, 6);
    bytes.writeBigUInt64LE(0x20n, 8);
    bytes.writeInt32LE(-1, 16);
    bytes.writeInt32LE(1, 20);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { binding } = require('../lib/core/binding');
    const { events, records } = binding.parse(bytes);
    const ev = FanotifyEvent._fromBatch({ bytes, events, records }, 0, null, false);
    expect(caught(() => ev.respond('allow')).code).toBe('ERR_NOT_PERMISSION_EVENT');
  });
});
