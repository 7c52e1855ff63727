#!/usr/bin/env node
// npm run prebuilds [-- ARCH...]: the prebuilt binaries shipped in the npm
// tarball, made with prebuildify (Node-API, stripped, tagged with the libc):
//
//   prebuilds/linux-x64/fanotify.glibc.node     native build
//   prebuilds/linux-arm64/fanotify.glibc.node   cross-compiled with aarch64-linux-gnu-g++
//                                               (Debian: apt-get install g++-aarch64-linux-gnu)
//
// ARCH is x64 and/or arm64 (default: both). Each build runs in a scratch copy
// of binding.gyp and src-native/, so the work tree's build/ (which
// node-gyp-build prefers over prebuilds/, and which `npm test` uses) is left
// as it is. `--verify` builds nothing: it checks that every binary is there,
// newer than the native sources, and passes the checks below. `npm pack`
// (prepack) and `npm publish` (prepublishOnly) run it, so no tarball ships
// without a binary; `FANOTIFY_PACK_ARCHES=x64` narrows the default of
// --verify to this machine's (the repository's package test, on a machine
// without the cross compiler).
//
// Release builds are linked for old systems, which a source build need not be:
//   - libstdc++ statically (-static-libstdc++, its symbols kept private with
//     --exclude-libs, unused parts dropped with --gc-sections), so the binary
//     needs no GLIBCXX_ version: g++ 12's runtime would need GLIBCXX_3.4.29,
//     newer than many systems have;
//   - pthread_create/join/once bound to their first glibc versions (--wrap
//     through a small C file, GLIBC_COMPAT below) instead of the GLIBC_2.34
//     ones glibc 2.34 gave them when it merged libpthread into libc, and
//     __libc_single_threaded (glibc 2.32) read as 0 (always use atomics).
// The binary then needs glibc 2.28 (fcntl64), as Node 20 itself does; a build
// that would need more fails here (MAX_GLIBC). `--plain` links as a source
// build does, to compare.
//
// After each build it checks the binary (ELF machine, that every undefined
// symbol without a version is one Node provides: napi_*, uv_*) and prints the
// libraries it needs and the highest GLIBC_/GLIBCXX_/CXXABI_/GCC_ version of
// each: the minimum the README states. A binary built for this machine is also
// loaded into a fresh node to see that it works.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));

const TARGETS = {
  x64: { triple: 'x86_64-linux-gnu', machine: 'Advanced Micro Devices X86-64' },
  arm64: { triple: 'aarch64-linux-gnu', machine: 'AArch64' },
};
const HOST_ARCH = os.arch();
// libstdc++ inside the binary, its symbols not exported (--exclude-libs), and
// the parts of it nothing calls dropped (--gc-sections): without that,
// std::runtime_error pulls in std::random_device and with it arc4random,
// which needs glibc 2.36.
const STATIC_LIBSTDCXX = '-static-libstdc++ -Wl,--exclude-libs,ALL -Wl,--gc-sections';
const MAX_GLIBC = '2.28';
const WRAPPED = ['pthread_create', 'pthread_join', 'pthread_once', '__libc_single_threaded'];
const GLIBC_COMPAT = `// Linked into release binaries by scripts/prebuild.js (ld --wrap): calls the
// first versions of these functions, which every glibc has, so the binary
// loads on glibc older than 2.34.
#include <pthread.h>
#if defined(__x86_64__)
# define FIRST "GLIBC_2.2.5"
#elif defined(__aarch64__)
# define FIRST "GLIBC_2.17"
#else
# error "no first glibc version known for this architecture"
#endif
#define HIDDEN __attribute__((visibility("hidden")))
extern int first_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
extern int first_pthread_join(pthread_t, void **);
extern int first_pthread_once(pthread_once_t *, void (*)(void));
__asm__(".symver first_pthread_create, pthread_create@" FIRST);
__asm__(".symver first_pthread_join, pthread_join@" FIRST);
__asm__(".symver first_pthread_once, pthread_once@" FIRST);
HIDDEN int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
  return first_pthread_create(t, a, f, arg);
}
HIDDEN int __wrap_pthread_join(pthread_t t, void **ret) { return first_pthread_join(t, ret); }
HIDDEN int __wrap_pthread_once(pthread_once_t *once, void (*f)(void)) { return first_pthread_once(once, f); }
/* libstdc++ skips atomic operations while this is nonzero; 0 is always correct. */
HIDDEN char __wrap___libc_single_threaded = 0;
`;

function usage(message) {
  if (message) console.error(`prebuild: ${message}`);
  console.error('usage: npm run prebuilds [-- [x64] [arm64] [--plain | --verify]]');
  process.exit(2);
}

const args = process.argv.slice(2);
const plain = args.includes('--plain');
const verify = args.includes('--verify');
const arches = args.filter((a) => !a.startsWith('--'));
for (const a of args.filter((x) => x.startsWith('--'))) if (a !== '--plain' && a !== '--verify') usage(`unknown option ${a}`);
for (const a of arches) if (!TARGETS[a]) usage(`unknown architecture ${a} (known: ${Object.keys(TARGETS).join(', ')})`);
const packArches = verify && process.env.FANOTIFY_PACK_ARCHES ? process.env.FANOTIFY_PACK_ARCHES.split(',').filter(Boolean) : [];
for (const a of packArches) if (!TARGETS[a]) usage(`unknown architecture ${a} in FANOTIFY_PACK_ARCHES (known: ${Object.keys(TARGETS).join(', ')})`);
if (arches.length === 0) arches.push(...(packArches.length ? packArches : Object.keys(TARGETS)));

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The toolchain of one target: cc/cxx null mean node-gyp's defaults; targetCc compiles GLIBC_COMPAT. */
function toolchain(arch) {
  if (arch === HOST_ARCH) return { cc: null, cxx: null, strip: 'strip', readelf: 'readelf', targetCc: 'cc' };
  const t = TARGETS[arch].triple;
  const tools = { cc: `${t}-gcc`, cxx: `${t}-g++`, strip: `${t}-strip`, readelf: `${t}-readelf` };
  const missing = Object.values(tools).filter((x) => !which(x));
  tools.targetCc = tools.cc;
  if (missing.length) {
    console.error(
      `prebuild: cannot build linux-${arch}: ${missing.join(', ')} not found.\n` +
        `  Install the cross compiler (Debian/Ubuntu): apt-get install -y g++-${t}\n` +
        `  or build only this machine's binary: npm run prebuilds -- ${HOST_ARCH}`,
    );
    process.exit(1);
  }
  return tools;
}

/**
 * Node's headers. Node-API headers do not depend on the architecture, so the
 * ones of the node running this script serve every target. A node installed
 * with its headers (prefix/include/node) is used as is; otherwise node-gyp
 * downloads the headers of this node's version.
 */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

/**
 * A scratch copy of what node-gyp needs, with the project's node_modules
 * linked in. Under build/, on the filesystem of prebuilds/: prebuildify
 * renames the binary into place, which fails (EXDEV) from a tmpfs /tmp.
 */
function stage() {
  fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'build', 'prebuild-'));
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(dir, 'binding.gyp'));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(root, 'src-native'), path.join(dir, 'src-native'), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

function build(arch, tools, headers) {
  const dir = stage();
  const out = path.join(root, 'prebuilds', `linux-${arch}`);
  fs.rmSync(out, { recursive: true, force: true });
  const env = { ...process.env };
  if (headers) env.npm_config_nodedir = headers;
  env.JOBS = env.JOBS || 'max'; // node-gyp: make -j<cpus>
  if (tools.cxx) Object.assign(env, { CC: tools.cc, CXX: tools.cxx, LINK: tools.cxx });
  if (!plain) {
    const compat = path.join(dir, 'glibc-compat.o');
    fs.writeFileSync(path.join(dir, 'glibc-compat.c'), GLIBC_COMPAT);
    execFileSync(tools.targetCc, ['-O2', '-fPIC', '-c', path.join(dir, 'glibc-compat.c'), '-o', compat], { stdio: 'inherit' });
    const wrap = `-Wl,${WRAPPED.map((w) => `--wrap=${w}`).join(',')}`;
    env.LDFLAGS = [env.LDFLAGS, STATIC_LIBSTDCXX, wrap, compat].filter(Boolean).join(' ');
  }
  const argv = [
    require.resolve('prebuildify/bin.js'),
    '--napi', '--strip', '--tag-libc',
    '--target', process.versions.node, // the headers of this node (prebuildify's default is the newest Node)
    '--arch', arch,
    '--strip-bin', tools.strip,
    '--node-gyp', path.join(root, 'node_modules', '.bin', 'node-gyp'),
    '--cwd', dir,
    '--out', root,
  ];
  console.log(`\n== linux-${arch}${tools.cxx ? ` (${tools.cxx})` : ''}${plain ? ', plain link' : `, static libstdc++, glibc <= ${MAX_GLIBC}`}`);
  const r = spawnSync(process.execPath, argv, { cwd: dir, env, stdio: 'inherit' });
  fs.rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) {
    console.error(`prebuild: prebuildify failed for linux-${arch} (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  const files = fs.existsSync(out) ? fs.readdirSync(out).filter((f) => f.endsWith('.node')) : [];
  if (files.length !== 1) {
    console.error(`prebuild: expected one .node file in ${out}, found ${files.length}`);
    process.exit(1);
  }
  return path.join(out, files[0]);
}

const readelf = (tool, flags, file) => execFileSync(tool, ['-W', ...flags, file], { encoding: 'utf8' });
const cmpVersion = (a, b) => {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) if ((pa[i] || 0) !== (pb[i] || 0)) return (pa[i] || 0) - (pb[i] || 0);
  return 0;
};

/** What the binary needs from the system, and a check that it is linked right. */
function inspect(arch, file, tools) {
  const header = readelf(tools.readelf, ['-h'], file);
  const machine = /Machine:\s+(.*)/.exec(header)?.[1].trim();
  if (machine !== TARGETS[arch].machine) throw new Error(`${file}: machine is ${machine}, expected ${TARGETS[arch].machine}`);

  const needed = [...readelf(tools.readelf, ['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);

  // Highest version needed per prefix (GLIBC_2.34, GLIBCXX_3.4.29, ...), from the version-needs section.
  const highest = {};
  for (const m of readelf(tools.readelf, ['-V'], file).matchAll(/Name: ([A-Z]+)_([0-9.]+)/g)) {
    const [, prefix, version] = m;
    if (!highest[prefix] || cmpVersion(version, highest[prefix].version) > 0) highest[prefix] = { version, symbols: [] };
  }
  // The symbols that need those highest versions, to say where a requirement comes from.
  const undefinedUnversioned = [];
  for (const line of readelf(tools.readelf, ['--dyn-syms'], file).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[6] !== 'UND' || !f[7]) continue;
    const [name, version] = f[7].split('@');
    if (!version) {
      if (f[4] !== 'WEAK') undefinedUnversioned.push(name);
      continue;
    }
    const m = /^([A-Z]+)_([0-9.]+)/.exec(version.replace(/^@/, ''));
    if (m && highest[m[1]] && highest[m[1]].version === m[2]) highest[m[1]].symbols.push(name);
  }
  // Node-API and libuv (uv_poll_*) come from the node executable: unversioned, resolved when loaded.
  const foreign = undefinedUnversioned.filter((n) => !/^(napi_|node_api_|uv_)/.test(n));
  if (foreign.length) throw new Error(`${file}: undefined symbols no library provides: ${foreign.join(', ')}`);
  if (!plain) {
    if (highest.GLIBC && cmpVersion(highest.GLIBC.version, MAX_GLIBC) > 0) {
      throw new Error(`${file} needs GLIBC_${highest.GLIBC.version} (${highest.GLIBC.symbols.join(', ')}), more than ${MAX_GLIBC}: bind those symbols to older versions in GLIBC_COMPAT`);
    }
    for (const p of ['GLIBCXX', 'CXXABI']) if (highest[p]) throw new Error(`${file} needs ${p}_${highest[p].version}: libstdc++ was not linked statically`);
  }
  return { machine, needed, highest, nodeImports: undefinedUnversioned.length };
}

/** Loads a binary built for this machine in a fresh node, as node-gyp-build would. */
function tryLoad(file) {
  const r = spawnSync(process.execPath, ['-e', `const b = require(${JSON.stringify(file)}); if (b.constants.FAN_FS_ERROR !== 0x8000) process.exit(3);`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${file} does not load: ${r.stderr.trim() || `exit ${r.status}`}`);
}

function newestSource() {
  let newest = fs.statSync(path.join(root, 'binding.gyp')).mtimeMs;
  for (const f of fs.readdirSync(path.join(root, 'src-native'))) newest = Math.max(newest, fs.statSync(path.join(root, 'src-native', f)).mtimeMs);
  return newest;
}

const results = [];
if (verify) {
  // readelf reads any ELF machine: no cross toolchain needed to check.
  const problems = [];
  for (const arch of arches) {
    const file = path.join(root, 'prebuilds', `linux-${arch}`, `${pkg.name}.glibc.node`);
    if (!fs.existsSync(file)) {
      problems.push(`${path.relative(root, file)} is missing`);
      continue;
    }
    if (fs.statSync(file).mtimeMs < newestSource()) problems.push(`${path.relative(root, file)} is older than src-native/ or binding.gyp`);
    try {
      const info = inspect(arch, file, { readelf: 'readelf' });
      if (arch === HOST_ARCH) tryLoad(file);
      results.push({ arch, file, size: fs.statSync(file).size, ...info, loaded: arch === HOST_ARCH });
    } catch (err) {
      problems.push(err.message);
    }
  }
  if (problems.length) {
    // Without its binary the tarball would install, then fail to load there (ERR_FANOTIFY_NO_BINARY).
    const who = process.env.npm_lifecycle_event === 'prepack' ? 'npm pack' : process.env.npm_lifecycle_event === 'prepublishOnly' ? 'npm publish' : 'prebuild --verify';
    console.error(
      `${who}: the tarball must carry a prebuilt binary for each platform it supports:\n  ${problems.join('\n  ')}\n` +
        'Make them with `npm run prebuilds` (linux-arm64 needs g++-aarch64-linux-gnu).\n' +
        `For a tarball to try on this machine only: FANOTIFY_PACK_ARCHES=${HOST_ARCH} npm pack (after \`npm run prebuilds -- ${HOST_ARCH}\`).`,
    );
    process.exit(1);
  }
} else {
  const headers = nodeDir();
  console.log(`fanotify ${pkg.version}: prebuilds for ${arches.map((a) => `linux-${a}`).join(', ')}; Node headers: ${headers || `downloaded by node-gyp for ${process.version}`}`);
  const plan = arches.map((arch) => ({ arch, tools: toolchain(arch) }));
  for (const { arch, tools } of plan) {
    const file = build(arch, tools, headers);
    const info = inspect(arch, file, tools);
    if (arch === HOST_ARCH) tryLoad(file);
    results.push({ arch, file, size: fs.statSync(file).size, ...info, loaded: arch === HOST_ARCH });
  }
}

console.log('\n== prebuilds');
for (const r of results) {
  console.log(`${path.relative(root, r.file)}  ${r.size} bytes  ${r.machine}${r.loaded ? ', loads in this node' : ''}`);
  console.log(`  needs: ${r.needed.join(' ')}; ${r.nodeImports} symbols from node (napi_*, uv_*)`);
  for (const [prefix, { version, symbols }] of Object.entries(r.highest).sort()) {
    console.log(`  ${`${prefix}_${version}`.padEnd(16)} ${symbols.join(' ')}`);
  }
}
