#!/usr/bin/env node
// The package as a user gets it: `npm pack`, then `npm install` of the tarball
// into a fresh project outside the repository, install scripts not run
// (npm 11 holds dependencies' install scripts back; --ignore-scripts makes
// sure), so the only native binary there is the one from prebuilds/. Then
// require, import, the command line and the TypeScript types are tried from
// that project. test/package.test.ts runs these steps under jest;
// `npm run test:pack` runs them alone and prints what it checked.
//
// The prebuilt binary for this machine comes from `npm run prebuilds -- ARCH`
// (scripts/prebuild.js); ensurePrebuild() makes it when it is missing or
// older than the native sources, which takes about 20 s.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const ARCH = os.arch();
const PREBUILT = `prebuilds/linux-${ARCH}/${pkg.name}.glibc.node`;

// Settings from a surrounding `npm test` (npm_config_*, npm_package_*, ...)
// must not leak into the npm of the test project: it gets npm's defaults,
// except where to fetch from and how (registry, proxy, cache, certificates).
const KEEP_NPM = /^npm_config_(registry|cache|userconfig|globalconfig|https?_proxy|proxy|noproxy|no_proxy|strict_ssl|cafile|ca|nodedir|offline|prefer_offline)$/i;
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !KEEP_NPM.test(k)) continue;
    if (k === 'NODE_PATH' || k === 'NODE_OPTIONS' || k === 'INIT_CWD') continue;
    if (k === `${pkg.name.toUpperCase().replace(/-/g, '_')}_PREBUILD`) continue; // node-gyp-build's override
    env[k] = v;
  }
  return { ...env, ...extra };
}

// Bounds against a hang; longer under emulation (the kernel matrix).
const TIME_SCALE = Math.max(1, Number(process.env.FANOTIFY_TEST_TIME_SCALE) || 1);

function run(cmd, args, { cwd, timeout = 120000, env, allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { cwd, env: env || cleanEnv(), encoding: 'utf8', timeout: timeout * TIME_SCALE, maxBuffer: 64 << 20 });
  const out = { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
  if (!allowFail && (r.error || r.status !== 0)) {
    throw new Error(
      `\`${[cmd, ...args].join(' ')}\` failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}) in ${cwd}\n` +
        `${out.stdout.trim()}\n${out.stderr.trim()}`.trim(),
    );
  }
  return out;
}
const npm = (args, opts) => run('npm', args, opts);

/** The newest mtime of the files a native build is made from. */
function newestSource() {
  let newest = fs.statSync(path.join(root, 'binding.gyp')).mtimeMs;
  for (const f of fs.readdirSync(path.join(root, 'src-native'))) {
    newest = Math.max(newest, fs.statSync(path.join(root, 'src-native', f)).mtimeMs);
  }
  return newest;
}

/**
 * The prebuilt binary of this machine's architecture, built by
 * scripts/prebuild.js when it is missing or older than the sources.
 * Returns { file, built, reason }.
 */
function ensurePrebuild({ log = () => {} } = {}) {
  const file = path.join(root, PREBUILT);
  let reason = null;
  if (!fs.existsSync(file)) reason = `${PREBUILT} is missing`;
  else if (fs.statSync(file).mtimeMs < newestSource()) reason = `${PREBUILT} is older than src-native/`;
  if (!reason) return { file, built: false, reason: null };
  log(`${reason}: building it (npm run prebuilds -- ${ARCH})`);
  run(process.execPath, [path.join(__dirname, 'prebuild.js'), ARCH], { cwd: root, timeout: 300000, env: process.env });
  return { file, built: true, reason };
}

/** `npm pack` into dir: { tarball, files: [{ path, size }], size, unpackedSize }. */
function pack(dir) {
  const r = npm(['pack', '--json', '--pack-destination', dir], { cwd: root, timeout: 180000, env: cleanEnv() });
  // prepack's output (tsc) comes before the JSON on stdout.
  const json = JSON.parse(r.stdout.slice(r.stdout.search(/^\[/m)));
  const info = json[0];
  return {
    tarball: path.join(dir, info.filename),
    files: info.files.map((f) => ({ path: f.path, size: f.size })),
    size: info.size,
    unpackedSize: info.unpackedSize,
  };
}

/** A new project in dir with the tarball installed, scripts not run. Returns npm's output. */
function install(dir, tarball) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'fanotify-pack-test', version: '1.0.0', private: true }, null, 2),
  );
  return npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir, timeout: 180000 });
}

// What a program in the test project reports: how it loaded the package and
// which native binary is mapped into it.
const PROBE = `
const fs = require('node:fs');
function natives() {
  return [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
    .map((l) => l.slice(l.indexOf('/')))
    .filter((p) => p.startsWith('/') && p.endsWith('.node')))];
}
`;
const CHECKS = {
  'require.cjs': `${PROBE}
const fan = require('fanotify');
const testing = require('fanotify/testing');
console.log(JSON.stringify({
  resolved: require.resolve('fanotify'),
  Fanotify: typeof fan.Fanotify,
  FAN_FS_ERROR: fan.constants.FAN_FS_ERROR,
  LoopImage: typeof testing.LoopImage,
  natives: natives(),
}));
`,
  'import.mjs': `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
${PROBE}
const fan = await import('fanotify');
const testing = await import('fanotify/testing');
const { Fanotify, constants } = fan;
console.log(JSON.stringify({
  resolved: import.meta.resolve('fanotify'),
  Fanotify: typeof Fanotify,
  FAN_FS_ERROR: constants.FAN_FS_ERROR,
  LoopImage: typeof testing.LoopImage,
  sameAsRequire: Fanotify === require('fanotify').Fanotify && fan.default === require('fanotify'),
  natives: natives(),
}));
`,
};

/** Runs a check program in the project: its JSON output. */
function check(dir, name) {
  fs.writeFileSync(path.join(dir, name), CHECKS[name]);
  const r = run(process.execPath, [name], { cwd: dir, timeout: 30000 });
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/**
 * `npx fanotify --version` in the project, as written (an npx option before
 * the name, such as --no, would make npx take --version as its own). With
 * npm_config_yes=false npx never fetches a package when the bin is missing.
 */
function npxVersion(dir) {
  return run('npx', ['fanotify', '--version'], { cwd: dir, timeout: 60000, env: cleanEnv({ npm_config_yes: 'false' }) }).stdout.trim();
}

/**
 * Loads the package with its prebuilds/ moved away (a platform nothing is
 * prebuilt for, and no build/): { status, stderr }. Puts prebuilds/ back.
 */
function loadWithoutBinary(dir) {
  const prebuilds = path.join(dir, 'node_modules', pkg.name, 'prebuilds');
  const aside = `${prebuilds}.aside`;
  fs.renameSync(prebuilds, aside);
  try {
    const r = run(process.execPath, ['-e', "require('fanotify')"], { cwd: dir, timeout: 30000, allowFail: true });
    return { status: r.status, stderr: r.stderr };
  } finally {
    fs.renameSync(aside, prebuilds);
  }
}

// How TypeScript users resolve the package: each is a tsconfig a real
// project could have. node10 (what `module: commonjs` and ts-jest default to)
// ignores "exports", so 'fanotify/testing' must resolve without them
// (package.json "typesVersions"); node16 and nodenext read "exports", as
// CommonJS (consumer.ts) and as an ES module (consumer.mts); bundler reads
// "exports" with the "import" condition.
const RESOLUTIONS = {
  'commonjs + node10': { options: { module: 'commonjs', moduleResolution: 'node10', target: 'es2022', lib: ['es2022', 'esnext.disposable'] }, files: ['consumer.ts'] },
  node16: { options: { module: 'node16', moduleResolution: 'node16', lib: ['es2022', 'esnext.disposable'] }, files: ['consumer.ts', 'consumer.mts'] },
  nodenext: { options: { module: 'nodenext', moduleResolution: 'nodenext' }, files: ['consumer.ts', 'consumer.mts'] },
  'esnext + bundler': { options: { module: 'esnext', moduleResolution: 'bundler', target: 'es2022', lib: ['es2022', 'esnext.disposable'] }, files: ['consumer.ts'] },
  'preserve + bundler': { options: { module: 'preserve', moduleResolution: 'bundler', target: 'es2022', lib: ['es2022', 'esnext.disposable'] }, files: ['consumer.ts'] },
};

/**
 * Type-checks test/types/consumer.ts in the project with the repository's
 * TypeScript, `--strict` and skipLibCheck off (the package's .d.ts files are
 * checked too), once under each of RESOLUTIONS. Returns tsc's output per
 * resolution ('' when clean).
 */
function typecheck(dir) {
  const src = fs.readFileSync(path.join(root, 'test', 'types', 'consumer.ts'), 'utf8');
  fs.writeFileSync(path.join(dir, 'consumer.ts'), src);
  fs.writeFileSync(path.join(dir, 'consumer.mts'), src);
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const out = {};
  for (const [name, { options, files }] of Object.entries(RESOLUTIONS)) {
    const config = `tsconfig.${name.replace(/\W+/g, '-')}.json`;
    fs.writeFileSync(
      path.join(dir, config),
      JSON.stringify({
        compilerOptions: {
          ...options,
          strict: true,
          noEmit: true,
          skipLibCheck: false, // check the package's .d.ts files too
          types: ['node'],
          typeRoots: [path.join(root, 'node_modules', '@types')],
        },
        files,
      }, null, 2),
    );
    const r = run(process.execPath, [tsc, '-p', config], { cwd: dir, timeout: 120000, allowFail: true });
    out[name] = (r.stdout + r.stderr).trim();
  }
  return out;
}

/** A scratch directory outside the repository (no node_modules above it). */
function scratch() {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `${pkg.name}-pack-test-`)));
}

module.exports = {
  root, pkg, ARCH, PREBUILT, RESOLUTIONS, ensurePrebuild, pack, install, check, npxVersion, loadWithoutBinary, typecheck, scratch, cleanEnv,
};

if (require.main === module) {
  const t0 = Date.now();
  const log = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);
  const tmp = scratch();
  let ok = true;
  const expect = (cond, what) => {
    console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
    if (!cond) ok = false;
  };
  try {
    ensurePrebuild({ log });
    const p = pack(tmp);
    log(`packed ${path.basename(p.tarball)}: ${p.files.length} files, ${p.size} bytes (${p.unpackedSize} unpacked)`);
    const project = path.join(tmp, 'project');
    install(project, p.tarball);
    log(`installed into ${project}`);
    const installed = path.join(project, 'node_modules', pkg.name);
    const expected = path.join(installed, PREBUILT);
    expect(!fs.existsSync(path.join(installed, 'build')), 'no build/ in the installed package');
    for (const name of Object.keys(CHECKS)) {
      const r = check(project, name);
      expect(r.Fanotify === 'function' && r.FAN_FS_ERROR === 0x8000 && r.LoopImage === 'function', `${name}: Fanotify, constants, fanotify/testing`);
      expect(r.natives.length === 1 && r.natives[0] === expected, `${name}: loaded ${r.natives.join(', ')}`);
    }
    expect(npxVersion(project) === pkg.version, `npx fanotify --version prints ${pkg.version}`);
    const missing = loadWithoutBinary(project);
    expect(missing.status !== 0 && /ERR_FANOTIFY_NO_BINARY|npm rebuild fanotify/.test(missing.stderr), 'without a binary: the error says what to run');
    console.log(missing.stderr.split('\n').find((l) => l.includes('fanotify:')) || missing.stderr);
    for (const [name, output] of Object.entries(typecheck(project))) {
      expect(output === '', `types: tsc --strict on the consumer, ${name}${output ? `\n${output}` : ''}`);
    }
  } catch (err) {
    console.error(err.message);
    ok = false;
  } finally {
    if (process.env.KEEP_PACK_TEST) log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
  log(ok ? 'package OK' : 'package test FAILED');
  process.exit(ok ? 0 : 1);
}
