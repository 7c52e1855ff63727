// The published package, tried as a user gets it (scripts/pack-test.js does
// the work): `npm pack`, `npm install --ignore-scripts` of the tarball into a
// fresh project outside the repository, then require, import, the command
// line and the types from there. No build/ exists in that copy, so the native
// binary can only come from the tarball's prebuilds/; the test checks which
// file is mapped into the process.
//
// As root, the project then runs every example from
// node_modules/fanotify/examples (the README's programs, test/examples.js)
// and `npx fanotify mounts` under a terminal's signals.
//
// Self-sufficient: when prebuilds/ has no binary for this machine, or one
// older than src-native/, it runs `npm run prebuilds -- <arch>` first (~20 s).
// Needs the npm registry for the package's two dependencies (npm's cache is
// tried first).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describeExamples, ExampleContext, examples } from './examples-suite';
import { bound, describeRoot } from './helpers';

interface PackedFile { path: string; size: number }
interface Packed { tarball: string; files: PackedFile[]; size: number; unpackedSize: number; only: string | null }
interface CheckResult {
  resolved: string;
  Fanotify: string;
  FAN_FS_ERROR: number;
  LoopImage: string;
  sameAsRequire?: boolean;
  natives: string[];
}
interface PackTest {
  pkg: { name: string; version: string };
  PREBUILT: string;
  ensurePrebuild(opts: { log: (s: string) => void }): { file: string; built: boolean; reason: string | null };
  scratch(): string;
  pack(dir: string): Packed;
  install(dir: string, tarball: string): { stdout: string; stderr: string };
  check(dir: string, name: 'require.cjs' | 'import.mjs'): CheckResult;
  npxVersion(dir: string): string;
  loadWithoutBinary(dir: string): { status: number | null; stderr: string };
  RESOLUTIONS: Record<string, unknown>;
  typecheck(dir: string): Record<string, string>;
  packWithoutPrebuilds(dir: string): { status: number | null; stderr: string; tarballs: string[] };
  exampleContext(dir: string): ExampleContext;
  npxStop(dir: string, how: 'group-SIGINT' | 'npx-SIGTERM'): Promise<NpxStop>;
}
interface NpxStop {
  npx: { code: number | null; signal: NodeJS.Signals | null };
  command: { pid: number; code: number | null };
  alive: boolean;
  stderr: string;
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const t = require('../scripts/pack-test.js') as PackTest;

const supported = process.platform === 'linux' && ['x64', 'arm64'].includes(process.arch);
const describeHere = supported ? describe : describe.skip;
if (!supported) console.log(`package: skipped, prebuilt binaries are made for linux-x64 and linux-arm64, not ${process.platform}-${process.arch}`);

describeHere('the npm package, installed from its tarball', () => {
  let tmp = '';
  let project = '';
  let installed = '';
  let packed: Packed;

  beforeAll(() => {
    const pre = t.ensurePrebuild({ log: (s) => console.log(`package: ${s}`) });
    expect(fs.existsSync(pre.file)).toBe(true);
    tmp = t.scratch();
    packed = t.pack(tmp);
    if (packed.only) console.log(`package: packed with linux-${packed.only}'s binary only (FANOTIFY_PACK_ARCHES): the others are not built here`);
    project = path.join(tmp, 'project');
    t.install(project, packed.tarball);
    installed = path.join(project, 'node_modules', t.pkg.name);
  }, 300_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the tarball holds what users need and nothing else', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of [
      'package.json', 'README.md', 'API.md', 'LICENSE', 'CHANGELOG.md', 'binding.gyp',
      'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts',
      'dist/testing.js', 'dist/testing.mjs', 'dist/testing.d.ts', 'dist/cli.js',
      t.PREBUILT, 'src-native/addon.cc', 'examples/fanotify-errors.service', 'examples/fanotify-alerts.yml',
    ]) expect(files).toContain(f);
    const stray = files.filter((f) => /^(build|test|bench|lib|scripts|node_modules|\.ci)\//.test(f) || /\.(map|tgz)$/.test(f) ||
      /^(tsconfig|jest\.config)/.test(f));
    expect(stray).toEqual([]);
    const shipped = fs.readdirSync(path.join(__dirname, '..', 'examples')).map((f) => `examples/${f}`).sort();
    expect(files.filter((f) => f.startsWith('examples/')).sort()).toEqual(shipped);
    for (const f of files.filter((x) => x.startsWith('prebuilds/'))) {
      expect(f).toMatch(/^prebuilds\/linux-(x64|arm64)\/fanotify\.glibc\.node$/);
    }
    expect(packed.size).toBeLessThan(1 << 20);
  });

  test('the installed copy has no build/, so only a prebuilt binary can load', () => {
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    expect(fs.existsSync(path.join(installed, t.PREBUILT))).toBe(true);
  });

  test("require('fanotify') and require('fanotify/testing') load the prebuilt binary", () => {
    const r = t.check(project, 'require.cjs');
    expect(r.resolved).toBe(path.join(installed, 'dist', 'index.js'));
    expect(r).toMatchObject({ Fanotify: 'function', FAN_FS_ERROR: 0x8000, LoopImage: 'function' });
    expect(r.natives).toEqual([path.join(installed, t.PREBUILT)]);
  });

  test("import('fanotify') loads the same module and binary", () => {
    const r = t.check(project, 'import.mjs');
    expect(r.resolved).toBe(`file://${path.join(installed, 'dist', 'index.mjs')}`);
    expect(r).toMatchObject({ Fanotify: 'function', FAN_FS_ERROR: 0x8000, LoopImage: 'function', sameAsRequire: true });
    expect(r.natives).toEqual([path.join(installed, t.PREBUILT)]);
  });

  test('npx fanotify --version', () => {
    expect(t.npxVersion(project)).toBe(t.pkg.version);
  });

  test('without a binary for the platform, the error says what to run', () => {
    const r = t.loadWithoutBinary(project);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('ERR_FANOTIFY_NO_BINARY');
    expect(r.stderr).toContain('npm rebuild fanotify --foreground-scripts');
    expect(r.stderr).toContain('No native build was found');
  });

  // tsc's output per resolution: a failing one shows which, and why.
  test('a TypeScript consumer type-checks against the installed declarations under each moduleResolution', () => {
    const clean = Object.fromEntries(Object.keys(t.RESOLUTIONS).map((name) => [name, '']));
    expect(t.typecheck(project)).toEqual(clean);
  }, 300_000);

  test('npm pack of a clone without its prebuilt binaries fails, naming each and the command that makes them', () => {
    const r = t.packWithoutPrebuilds(fs.mkdtempSync(path.join(tmp, 'no-prebuilds-')));
    expect(r.status).not.toBe(0);
    expect(r.tarballs).toEqual([]);
    expect(r.stderr).toContain('npm pack: the tarball must carry a prebuilt binary for each platform it supports');
    expect(r.stderr).toContain('prebuilds/linux-x64/fanotify.glibc.node is missing');
    expect(r.stderr).toContain('prebuilds/linux-arm64/fanotify.glibc.node is missing');
    expect(r.stderr).toContain('Make them with `npm run prebuilds`');
  }, 60_000);

  // Each example as a user runs it: `node node_modules/fanotify/examples/NAME.mjs`
  // in the project, 'fanotify' resolved by the package's self-reference.
  describeExamples('the examples, run from the installed package', () => t.exampleContext(project), () => {
    test('examples/health.test.js, copied into the project, passes under jest', async () => {
      const r = await examples.runJestExample(t.exampleContext(project));
      console.log(`$ ${r.command}\n  ${r.line}`);
    }, bound(120_000));
  });

  // A terminal's Ctrl-C goes to the whole process group: npx (npm), the
  // `sh -c fanotify ...` it starts, and the command. npm then ends as its
  // shell did: dash (Debian's sh) dies of the SIGINT itself, bash execs the
  // command. Either way the command cleans up and exits 0, and never
  // outlives npx.
  describeRoot('npx fanotify mounts under signals, in a process group of its own', () => {
    test('Ctrl-C (SIGINT to the group): the command exits 0 and is gone; npx ends as its sh did', async () => {
      const s = await t.npxStop(project, 'group-SIGINT');
      expect({ code: s.command.code, alive: s.alive }).toEqual({ code: 0, alive: false });
      expect([0, 'SIGINT']).toContain(s.npx.code ?? s.npx.signal);
      expect(s.stderr).not.toMatch(/^\s+at /m);
    }, bound(60_000));

    test('SIGTERM to npx alone: the command does not outlive it, and exits 0', async () => {
      const s = await t.npxStop(project, 'npx-SIGTERM');
      expect({ code: s.command.code, alive: s.alive }).toEqual({ code: 0, alive: false });
      expect([0, 'SIGTERM']).toContain(s.npx.code ?? s.npx.signal);
      expect(s.stderr).not.toMatch(/^\s+at /m);
    }, bound(60_000));
  });
});
