// Every program in the README (a ```js block whose first line is
// "// NAME.mjs ...") runs as written. Each is saved as an ES module inside
// this package, so that `import ... from 'fanotify'` resolves to it as it
// would in an app that installed it; the README's example paths (/srv, ...)
// are pointed at a loop image; it runs as root, is poked until it does what
// it promises, and must exit 0 on SIGINT. Each is also type-checked, as
// written, with tsc --strict.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { LoopImage } from '../lib/testing';
import { killAll, start, Started } from './children';
import { bound, describeRoot, sleep, testFeature } from './helpers';

const ROOT = path.join(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
// Inside the package (build/ is ignored by git and npm), so 'fanotify' is this package.
const DIR = path.join(ROOT, 'build', 'readme-programs');

const programs = new Map<string, string>();
for (const m of README.matchAll(/```js\n(\/\/ ([\w-]+)\.mjs[^\n]*\n[\s\S]*?)```/g)) programs.set(m[2], m[1]);

afterEach(killAll);

/** The program `name` with the README's paths replaced, saved; returns its path. */
function save(name: string, paths: Record<string, string> = {}): string {
  let source = programs.get(name);
  if (source === undefined) throw new Error(`README has no program ${name}.mjs`);
  // Longest first: '/srv/secret' before '/srv'.
  for (const from of Object.keys(paths).sort((a, b) => b.length - a.length)) {
    const quoted = `'${from}'`;
    if (!source.includes(quoted)) throw new Error(`${name}.mjs has no ${quoted}`);
    source = source.split(quoted).join(JSON.stringify(paths[from]));
  }
  fs.mkdirSync(DIR, { recursive: true });
  const file = path.join(DIR, `${name}.mjs`);
  fs.writeFileSync(file, source);
  return file;
}

/**
 * Calls `step` every 200 ms (it pokes the program and says whether it did
 * what it promises) until it is done; then SIGINT, which must end it with 0.
 */
async function runUntil(p: Started, what: string, step: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + bound(10_000);
  while (!(await step())) {
    if (!p.running() || Date.now() > deadline) {
      p.child.kill('SIGKILL');
      const r = await p.result;
      throw new Error(`${what}: not seen; exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    await sleep(200);
  }
  p.child.kill('SIGINT');
  const r = await p.result;
  expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
}

/** A step that pokes, then looks for `want` on the program's stdout. */
const printed = (p: Started, want: RegExp, poke: () => unknown) => async (): Promise<boolean> => {
  await poke();
  return want.test(p.out());
};

const node = (file: string, args: string[] = []): Started => start(process.execPath, [file, ...args], bound(30_000));

describeRoot('README programs', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ mountOptions: ['errors=continue'] });
  });
  afterAll(async () => {
    await img?.dispose();
    fs.rmSync(DIR, { recursive: true, force: true });
  });

  test('the README has the programs this test knows', () => {
    expect([...programs.keys()].sort()).toEqual(['changes', 'feed', 'gate', 'health', 'mirror', 'mounts']);
  });

  test('each type-checks with tsc --strict, as written', () => {
    const dir = path.join(DIR, 'types');
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, source] of programs) fs.writeFileSync(path.join(dir, `${name}.mts`), source);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: ['node'], skipLibCheck: true,
      },
      include: ['*.mts'],
    }));
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
  }, bound(60_000));

  test('changes.mjs: names what is created on the filesystem', async () => {
    // A new file at each poke: the first may come before the mark is in place.
    const base = path.join(img.mountPoint, `changes-${process.pid}`);
    let n = 0;
    const p = node(save('changes', { '/srv': img.mountPoint }));
    await runUntil(p, `create ${base}-N`, printed(p, new RegExp(`^create ${base}-\\d+$`, 'm'), () => fs.writeFileSync(`${base}-${n++}`, 'x')));
  });

  test('gate.mjs PID: another process is denied the open, PID is not', async () => {
    const secret = path.join(img.mountPoint, 'secret');
    fs.writeFileSync(secret, 'secret');
    const p = node(save('gate', { '/srv/secret': secret }), [String(process.pid)]);
    await runUntil(p, 'cat denied', async () => {
      const cat = await start('cat', [secret]).result;
      if (cat.code === 0 || !/Operation not permitted/.test(cat.stderr)) return false;
      expect(fs.readFileSync(secret, 'utf8')).toBe('secret');  // this process is PID
      return true;
    });
  });

  test('health.mjs: an ext4 error, by code', async () => {
    const p = node(save('health'));
    await runUntil(p, 'EFSCORRUPTED', printed(p, /EFSCORRUPTED/, () => img.triggerError('README health.mjs')));
  });

  test('mounts.mjs: a mount made while it runs', async () => {
    const at = fs.mkdtempSync('/tmp/fanotify-readme-mount-');
    try {
      // Mounted again at each poke (the first may come before the watch is in
      // place), and left mounted until seen: before 6.15 the table is read
      // after each change, and a mount already gone by then is not there.
      const p = node(save('mounts'));
      await runUntil(p, `an attach at ${at}`, printed(p, new RegExp(`mountPoint: '${at}'`), () => {
        try {
          execFileSync('umount', [at], { stdio: 'ignore' });
        } catch {
          // not mounted yet
        }
        execFileSync('mount', ['-t', 'tmpfs', 'fanotify-readme', at]);
      }));
    } finally {
      try {
        execFileSync('umount', [at], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
      fs.rmSync(at, { recursive: true, force: true });
    }
  });

  test('feed.mjs: full paths of creates', async () => {
    const dir = path.join(img.mountPoint, 'feed');
    fs.mkdirSync(dir, { recursive: true });
    const base = path.join(dir, `new-${process.pid}`);
    let n = 0;
    const p = node(save('feed', { '/srv': dir }));
    await runUntil(p, `create ${base}-N`, printed(p, new RegExp(`\\[ 'create' \\] '?${base}-\\d+`), () => fs.writeFileSync(`${base}-${n++}`, 'x')));
  });

  testFeature('preAccess', 'mirror.mjs: a stub read by another process gets the source bytes', async () => {
    const source = path.join(img.mountPoint, 'remote-copy');
    const stubs = path.join(img.mountPoint, 'mirror');
    fs.mkdirSync(path.join(source, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(source, 'sub', 'big'), Buffer.alloc(3 << 20, 7));
    const p = node(save('mirror', { '/srv/remote-copy': source, '/data/mirror': stubs }));
    await runUntil(p, 'the stub read with the source bytes', async () => {
      if (!fs.existsSync(path.join(stubs, 'sub', 'big'))) return false;  // populate() still running
      return (await start('cmp', [path.join(source, 'sub', 'big'), path.join(stubs, 'sub', 'big')]).result).code === 0;
    });
  });
});
