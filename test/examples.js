// The examples (examples/: the README's programs and its jest test), run as
// a user runs them: as root, against a loop image. Each program is poked
// until it does what it promises; then SIGINT, which must end it with exit 0
// and nothing on stderr. Plain JavaScript, so that scripts/pack-test.js can
// run them in the project that installed the tarball (test/package.test.ts,
// `npm run test:pack`). test/readme-programs.test.ts checks that the README
// shows these very files.
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

// Bounds against a hang; longer under emulation (the kernel matrix).
const TIME_SCALE = Math.max(1, Number(process.env.FANOTIFY_TEST_TIME_SCALE) || 1);
const bound = (ms) => ms * TIME_SCALE;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns cmd (stdin ignored, output collected); SIGKILLs it after killAfterMs. */
function start(cmd, args, { cwd, env, killAfterMs = bound(30000) } = {}) {
  const startedAt = Date.now();
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const result = new Promise((resolve) => {
    child.on('error', () => undefined);  // reported through 'close'
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - startedAt });
    });
  });
  return { child, result, out: () => stdout, running: () => child.exitCode === null && child.signalCode === null };
}

const report = (cmd, r) => `${cmd}: exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/**
 * Calls `step` every 200 ms (it pokes the program and says whether it did
 * what it promises) until it is done; then SIGINT, which must end it with 0
 * and an empty stderr. Returns the program's result, with `pokes`.
 */
async function runUntil(p, cmd, what, step) {
  const deadline = Date.now() + bound(10000);
  let pokes = 0;
  while ((pokes++, !(await step()))) {
    if (!p.running() || Date.now() > deadline) {
      p.child.kill('SIGKILL');
      throw new Error(`${what}: not seen; ${report(cmd, await p.result)}`);
    }
    await sleep(200);
  }
  p.child.kill('SIGINT');
  const r = await p.result;
  if (r.code !== 0 || r.signal !== null || r.stderr !== '') throw new Error(`after SIGINT, ${report(cmd, r)}`);
  return { ...r, pokes };
}

/** A step that pokes, then looks for `want` on the program's stdout. */
const printed = (p, want, poke) => async () => {
  await poke();
  return want.test(p.out());
};

const quiet = (cmd, args) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // as expected, at times: nothing to undo
  }
};

// What each program is run with and poked by: { args(img), promise, run }.
// run(ctx) returns the line that says what was seen; ctx has the image, node
// (starts the program with its arguments) and the list of missing features.
const PROGRAMS = {
  changes: {
    promise: 'names what is created on the filesystem',
    async run({ img, node }) {
      // A new file at each poke: the first may come before the mark is in place.
      const base = path.join(img.mountPoint, `changes-${process.pid}`);
      let n = 0;
      const { p, cmd } = node([img.mountPoint]);
      const r = await runUntil(p, cmd, `create ${base}-N`, printed(p, new RegExp(`^create ${base}-\\d+$`, 'm'), () => fs.writeFileSync(`${base}-${n++}`, 'x')));
      return { cmd, r, saw: r.stdout.split('\n')[0] };
    },
  },
  gate: {
    promise: 'another process is denied the open, PID is not',
    async run({ img, node }) {
      const secret = path.join(img.mountPoint, 'secret');
      fs.writeFileSync(secret, 'secret');
      let denied = '';
      const { p, cmd } = node([String(process.pid), secret]);
      const r = await runUntil(p, cmd, 'cat denied', async () => {
        const cat = await start('cat', [secret]).result;
        if (cat.code === 0 || !/Operation not permitted/.test(cat.stderr)) return false;
        if (fs.readFileSync(secret, 'utf8') !== 'secret') throw new Error(`${secret}: PID (this process) could not read it`);
        denied = cat.stderr.trim();
        return true;
      });
      return { cmd, r, saw: `${denied}; PID read it` };
    },
  },
  health: {
    promise: 'an ext4 error, by code',
    async run({ img, node }) {
      const { p, cmd } = node([]);
      const r = await runUntil(p, cmd, 'EFSCORRUPTED', printed(p, /EFSCORRUPTED/, () => img.triggerError('examples/health.mjs')));
      return { cmd, r, saw: r.stdout.split('\n').find((l) => l.includes('EFSCORRUPTED')) };
    },
  },
  mounts: {
    promise: 'a mount made while it runs',
    async run({ node }) {
      const at = fs.mkdtempSync('/tmp/fanotify-example-mount-');
      try {
        // Mounted again at each poke (the first may come before the watch is
        // in place), and left mounted until seen: before 6.15 the table is read
        // after each change, and a mount already gone by then is not there.
        const { p, cmd } = node([]);
        const r = await runUntil(p, cmd, `an attach at ${at}`, printed(p, new RegExp(`mountPoint: '${at}'`), () => {
          quiet('umount', [at]);
          execFileSync('mount', ['-t', 'tmpfs', 'fanotify-example', at]);
        }));
        // console.log(m) prints the object over several lines: the attach at `at`, on one.
        const objects = r.stdout.split(/\n(?=\{)/).filter((o) => o.includes(at));
        const shown = objects.find((o) => o.includes("'attach'")) ?? objects[0];
        return { cmd, r, saw: shown.replace(/\s+/g, ' ').trim() };
      } finally {
        quiet('umount', [at]);
        fs.rmSync(at, { recursive: true, force: true });
      }
    },
  },
  feed: {
    promise: 'full paths of creates',
    async run({ img, node }) {
      const dir = path.join(img.mountPoint, 'feed');
      fs.mkdirSync(dir, { recursive: true });
      const base = path.join(dir, `new-${process.pid}`);
      let n = 0;
      const { p, cmd } = node([dir]);
      const want = new RegExp(`\\[ 'create' \\] '?${base}-\\d+`);
      const r = await runUntil(p, cmd, `create ${base}-N`, printed(p, want, () => fs.writeFileSync(`${base}-${n++}`, 'x')));
      return { cmd, r, saw: r.stdout.split('\n').find((l) => want.test(l)) };
    },
  },
  mirror: {
    promise: 'a stub read by another process gets the source bytes; a second run fetches only the rest',
    feature: 'preAccess',
    async run({ img, node, lacking }) {
      const source = path.join(img.mountPoint, 'remote-copy');
      const stubs = path.join(img.mountPoint, 'mirror');
      const big = path.join('sub', 'big');
      fs.mkdirSync(path.join(source, 'sub'), { recursive: true });
      fs.writeFileSync(path.join(source, big), Buffer.alloc(3 << 20, 7));  // three 1 MiB chunks
      if (lacking.includes('preAccess')) {
        // populate() refuses at once: nothing could serve the stubs.
        const { p, cmd } = node([source, stubs]);
        const r = await p.result;
        if (r.code !== 1 || !/code: 'ERR_FANOTIFY_UNSUPPORTED'/.test(r.stderr) || !/feature: 'preAccess'/.test(r.stderr))
          throw new Error(`without preAccess, expected ERR_FANOTIFY_UNSUPPORTED; ${report(cmd, r)}`);
        return { cmd, r, saw: `${r.stderr.split('\n').find((l) => l.startsWith('Error: '))} (code: 'ERR_FANOTIFY_UNSUPPORTED', feature: 'preAccess')` };
      }
      const cmp = async (...n) => (await start('cmp', [...n, path.join(source, big), path.join(stubs, big)]).result).code === 0;
      // The first 4 KiB (the first chunk) read, by cmp: another process.
      const first = node([source, stubs]);
      const r1 = await runUntil(first.p, first.cmd, 'the first chunk read with the source bytes', async () =>
        fs.existsSync(path.join(stubs, big)) && cmp('-n', '4096'));  // not yet: populate() still running
      // Started again: the stubs are served as the first run left them.
      const second = node([source, stubs]);
      const r = await runUntil(second.p, second.cmd, 'the whole stub read with the source bytes', () => cmp());
      const fetched = (s) => s.split('\n').filter((l) => l.startsWith('fetch '));
      if (!fetched(r1.stdout).some((l) => / at 0,/.test(l)) || fetched(r.stdout).some((l) => / at 0,/.test(l)))
        throw new Error(`the second run fetched the first chunk again:\nfirst run: ${r1.stdout}\nsecond run: ${r.stdout}`);
      return { cmd: second.cmd, r, saw: `run 1: ${fetched(r1.stdout).join('; ')}; run 2: ${fetched(r.stdout).join('; ')}` };
    },
  },
};

/**
 * Runs examples/NAME.mjs from `examples` (a directory) with node, cwd `cwd`,
 * env `env`; `img` is a LoopImage (of this repository's lib/testing or of the
 * installed fanotify/testing), `lacking` the features this kernel lacks.
 * Throws when the program does not do what it promises or does not end with
 * 0 on SIGINT. Returns { command, line, ms }: a line for the transcript.
 */
async function runProgram(name, { examples, cwd, env, img, lacking = [] }) {
  const program = PROGRAMS[name];
  if (!program) throw new Error(`no example ${name}`);
  const file = path.join(examples, `${name}.mjs`);
  const node = (args) => {
    const shown = path.relative(cwd, file);
    return { p: start(process.execPath, [file, ...args], { cwd, env }), cmd: ['node', shown, ...args].join(' ') };
  };
  const { cmd, r, saw } = await program.run({ img, node, lacking });
  const end = r.code === 0 ? `SIGINT -> exit 0${r.pokes ? `, after ${r.pokes} poke${r.pokes > 1 ? 's' : ''}` : ''}` : `exit ${r.code}`;
  return { command: cmd, line: `${saw}  [${end}, ${r.ms} ms]`, ms: r.ms };
}

/**
 * examples/health.test.js, copied into the project as a user would, run by
 * this repository's jest with the project as its root: 'fanotify' and
 * 'fanotify/testing' resolve to the installed package. Throws unless it
 * passes. Returns { command, line, ms }.
 */
async function runJestExample({ examples, cwd, env, jest }) {
  const dir = path.join(cwd, 'test');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(examples, 'health.test.js'), path.join(dir, 'health.test.js'));
  const args = [jest, '--rootDir', cwd, '--ci', '--colors=false', `--testTimeout=${bound(30000)}`];
  const p = start(process.execPath, args, { cwd, env, killAfterMs: bound(120000) });
  const r = await p.result;
  const cmd = `node ${jest} --rootDir .  (${path.relative(cwd, path.join(dir, 'health.test.js'))}, copied from ${path.relative(cwd, examples)}/)`;
  if (r.code !== 0 || !/Tests:\s+1 passed, 1 total/.test(r.stderr)) throw new Error(`jest: ${report(cmd, r)}`);
  const saw = r.stderr.split('\n').filter((l) => /✓|Tests:/.test(l)).map((l) => l.trim()).join('; ');
  return { command: cmd, line: `${saw}  [exit 0, ${r.ms} ms]`, ms: r.ms };
}

module.exports = { PROGRAMS, runProgram, runJestExample };
