#!/usr/bin/env bash
# Runs the whole jest suite against the native addon built with AddressSanitizer
# and UndefinedBehaviorSanitizer, in one command:
#
#   scripts/sanitize.sh                 every test file
#   scripts/sanitize.sh test/permission.test.ts -t 'Worker'   jest arguments pass through
#   SANITIZE_LEAKS=0 scripts/sanitize.sh   no leak check (faster exit)
#   SANITIZE_CC=gcc scripts/sanitize.sh    GCC's sanitizers instead of clang's
#
# The instrumented addon is built beside the normal one, in
# build/sanitize/<cc>/ (a gyp project there whose binding.gyp is a copy of ours
# and whose src-native is a link to ours), so build/Release stays the normal
# build and nothing needs rebuilding afterwards. node-gyp-build loads it
# because FANOTIFY_PREBUILD points there: it then looks in
# build/sanitize/<cc>/build/Release (node-gyp-build honours <NAME>_PREBUILD).
#
# node itself is not instrumented, so the ASan runtime (clang's
# libclang_rt.asan-x86_64.so, or GCC's libasan.so) is preloaded into node: into jest, and, through a small hook every node process
# loads (NODE_OPTIONS=--require build/sanitize/node-preload.js, written by this
# script), into every node process the tests start (the CLI tests run node
# dist/cli.js), but not into the other programs they run (mount, mkfs, cat...).
# The hook also loads the addon once in each node process, so that a copy a
# Worker loaded stays mapped after the Worker exits and leak stacks through it
# can be read (SANITIZE_PIN_ADDON=0 turns that off).
# Every sanitizer report goes to a file in build/sanitize/reports/ (log_path),
# not to stderr, so reports from child processes whose output a test swallows
# are kept. Afterwards this script reads them:
#   - any ASan error or UBSan "runtime error" fails the run;
#   - a leak (LeakSanitizer, at each node process's exit) fails it when the
#     addon allocated it: the first frame past the allocator and the C/C++
#     runtimes is in fanotify.node. node and V8 keep memory until exit by
#     design, and V8 allocates while the addon calls into JavaScript; those
#     are counted, not failed (an LSan suppression cannot separate them: it
#     matches any frame of a stack). Allocations left behind by design are
#     listed in `known` below, each with its reason, and counted apart.
# Exit status: non-zero when jest failed or a finding is attributed to the addon.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# The compiler: clang when it and its ASan runtime are installed, else GCC
# (SANITIZE_CC=gcc|clang to choose). Why clang first: with GCC, UBSan is a
# library of its own (libubsan) beside libasan, and with libasan preloaded its
# reports ignore log_path and go to the stderr of whichever process hit them
# (libasan takes over the report-path setter); clang's ASan runtime includes
# UBSan, and every report lands in the report files. With GCC, UBSan is made
# fatal instead (-fno-sanitize-recover=undefined), so a finding cannot pass
# unnoticed, and jest's own output is searched for it.
cc=${SANITIZE_CC:-}
if [ -z "$cc" ]; then
  if command -v clang++ >/dev/null && [ -e "$(clang -print-file-name=libclang_rt.asan-x86_64.so)" ]; then cc=clang; else cc=gcc; fi
fi
san_flags="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"
case $cc in
  clang)
    san_cc=clang san_cxx=clang++
    # -shared-libasan: the addon needs the runtime node has preloaded.
    san_ldflags="-fsanitize=address,undefined -shared-libasan"
    asan_rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    asan_lib=libclang_rt.asan ;;
  gcc)
    san_cc=gcc san_cxx=g++
    san_flags="$san_flags -fno-sanitize-recover=undefined"
    san_ldflags="-fsanitize=address,undefined"
    asan_rt=$(gcc -print-file-name=libasan.so)
    asan_lib=libasan ;;
  *) echo "sanitize.sh: SANITIZE_CC must be gcc or clang" >&2; exit 2 ;;
esac
if [ ! -e "$asan_rt" ]; then
  echo "sanitize.sh: the ASan runtime is not installed ($asan_rt): apt-get install -y clang libclang-rt-14-dev (or libasan8 for gcc)" >&2
  exit 2
fi
top=build/sanitize
out=$top/$cc           # a gyp project per compiler; the addon in $out/build/Release
reports=$top/reports

# node-gyp outside npm does not see npm's config: pass the headers' location
# (nodedir) as npm would, or node-gyp tries to download them.
if [ -z "${npm_config_nodedir:-}" ]; then
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  case $nodedir in ''|undefined|null) ;; *) export npm_config_nodedir=$nodedir ;; esac
fi

echo "== build: normal addon and dist/ (the CLI tests run dist/cli.js)"
node scripts/build.js

echo "== build: addon with $cc -fsanitize=address,undefined into $out/build/Release"
mkdir -p "$out"
# A gyp project of its own: our binding.gyp, our sources through a link.
if ! cmp -s binding.gyp "$out/binding.gyp"; then cp binding.gyp "$out/binding.gyp"; rm -f "$out/build/Makefile"; fi
ln -sfn ../../../src-native "$out/src-native"
node_gyp=$(node -p "require.resolve('node-gyp/bin/node-gyp.js')")
gyp_args=(--directory="$out" --loglevel=warn)
# Configured once (the flags are read by make, not baked in); make rebuilds
# what changed.
[ -f "$out/build/Makefile" ] || node "$node_gyp" configure "${gyp_args[@]}"
CC=$san_cc CXX=$san_cxx LINK=$san_cxx CFLAGS="$san_flags" CXXFLAGS="$san_flags" LDFLAGS="$san_ldflags" \
  node "$node_gyp" build "${gyp_args[@]}"
if ! readelf -d "$out/build/Release/fanotify.node" | grep NEEDED | grep -q "$asan_lib"; then
  echo "sanitize.sh: $out/build/Release/fanotify.node is not linked with $asan_lib" >&2; exit 2
fi

rm -rf "$reports"
mkdir -p "$reports"

# The ASan runtime goes into node processes only: other programs the tests run
# (mount, mkfs, debugfs, cat, sh, gcc, ...) do not need it, and some misbehave
# with it (procps' uptime hangs). Every node process loads this hook first
# (NODE_OPTIONS=--require): it takes LD_PRELOAD out of its own environment,
# which children inherit, and puts it back for children that are node (or a
# wrapper such as prlimit that runs node).
hook=$root/$out/node-preload.js
cat >"$hook" <<'JS'
'use strict';
// Generated by scripts/sanitize.sh: keeps the ASan runtime preloaded into node
// children only.
const cp = require('child_process');
const path = require('path');
const rt = process.env.SANITIZE_ASAN_RT;
delete process.env.LD_PRELOAD;
// Pin the addon: loaded once here, it stays mapped until exit, even after a
// Worker that loaded it too has gone (Node dlclose()s what a Worker's env
// loaded). Otherwise leak stacks through a copy a Worker loaded end in
// unknown frames (the code is unmapped by the time LSan reports).
if (process.env.SANITIZE_PIN_ADDON !== '0') {
  try {
    process.dlopen({ exports: {} }, path.join(process.env.FANOTIFY_PREBUILD, 'build', 'Release', 'fanotify.node'));
  } catch (err) {
    process.stderr.write(`sanitize preload: could not pin the addon: ${err.message}\n`);
  }
}
const isNodePath = (file) => file === process.execPath || path.basename(String(file)) === 'node';
// node itself, or a wrapper that execs it (prlimit ... node ...).
const isNode = (file, args) => isNodePath(file) || (Array.isArray(args) && args.slice(1).some(isNodePath));
const withPreload = (env) => ({ ...(env || process.env), LD_PRELOAD: rt });
// spawn, execFile, exec, fork: all end in ChildProcess.prototype.spawn, with envPairs built.
const spawn = cp.ChildProcess.prototype.spawn;
cp.ChildProcess.prototype.spawn = function (options) {
  if (options && isNode(options.file, options.args) && Array.isArray(options.envPairs)) {
    options.envPairs = options.envPairs.filter((kv) => !kv.startsWith('LD_PRELOAD='));
    options.envPairs.push(`LD_PRELOAD=${rt}`);
  }
  return spawn.call(this, options);
};
// The synchronous ones take options through the exported functions.
for (const name of ['spawnSync', 'execFileSync']) {
  const orig = cp[name];
  cp[name] = function (file, args, options) {
    if (isNode(file, Array.isArray(args) ? [file, ...args] : [])) {
      if (!Array.isArray(args)) { options = args; args = []; }
      return orig.call(this, file, args, { ...options, env: withPreload(options && options.env) });
    }
    return orig.apply(this, arguments);
  };
}
JS
export SANITIZE_ASAN_RT=$asan_rt
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--require=$hook"
export FANOTIFY_PREBUILD=$root/$out
# detect_leaks: LeakSanitizer at each node process's exit; LSan's exitcode=0
# leaves exit codes alone (leaks are judged from the reports below).
# halt_on_error: an ASan error stops the process (the default).
# allow_user_segv_handler: V8 installs its own. The fast unwinder (the default)
# keeps this affordable: the slow one costs seconds per process.
# stack_trace_format: every frame names its module, which the report check uses.
frame_format='stack_trace_format="    #%n %p in %f %S (%m+%o)"'
export ASAN_OPTIONS="log_path=$root/$reports/san:detect_leaks=${SANITIZE_LEAKS:-1}:allow_user_segv_handler=1:detect_odr_violation=0:malloc_context_size=30:$frame_format"
export LSAN_OPTIONS="exitcode=0:report_objects=0"
export UBSAN_OPTIONS="log_path=$root/$reports/san:print_stacktrace=1:$frame_format"

loaded=$(LD_PRELOAD=$asan_rt ASAN_OPTIONS=detect_leaks=0 node -e "console.log(require('node-gyp-build').path(process.argv[1]))" "$root")
echo "== addon under test: $loaded"
case $loaded in "$root/$out/"*) ;; *) echo "sanitize.sh: the sanitized addon is not the one loaded" >&2; exit 2 ;; esac

echo "== jest (sanitized addon, ASan runtime preloaded)"
# test/package.test.ts is left out: it builds the release binary and checks
# that an installed tarball loads it, while FANOTIFY_PREBUILD here makes every
# copy load the sanitized build (and the preloaded runtime breaks the compiler
# runs of the release build).
# jest's output is kept too: with GCC, UBSan reports of the jest process are there.
# (This ignore list replaces jest.config.js's, so examples-here.test.ts runs
# too: the examples' programs against the sanitized addon.)
set +e
LD_PRELOAD=$asan_rt node node_modules/jest/bin/jest.js "$@" --testPathIgnorePatterns test/package.test.ts 2>&1 | tee "$reports/jest.log"
status=${PIPESTATUS[0]}
set -e

echo "== sanitizer reports ($reports)"
python3 - "$reports" <<'PY' || status=1
import os, re, sys
d = sys.argv[1]
# Frames end in "(module+0xoffset)" (stack_trace_format above). A leak is ours
# when the first frame past the allocator and the C/C++ runtimes is in the
# addon: V8 objects allocated while the addon calls into JavaScript have addon
# frames further down, and are not ours.
frame_re = re.compile(r'^\s*#\d+ .*\((\S+)\+0x[0-9a-f]+\)\s*$', re.M)
runtime = re.compile(r'/(libasan|libubsan|liblsan|libclang_rt\.[a-z_]+-x86_64|libstdc\+\+|libc\+\+|libc|libgcc_s|libm|ld-linux[^/]*)\.so')
def allocated_by_addon(block):
    for module in frame_re.findall(block):
        if runtime.search(module):
            continue
        return os.path.basename(module) == 'fanotify.node'
    return False
# Allocations the addon leaves behind by design (function of the first addon
# frame -> why). Nothing else is excused.
known = {
    'fan::Poller::Poller': 'the uv_poll_t that Poller::CloseForTeardown leaves to a dying loop '
                          '(Worker/env teardown with a group still open; poller.h), by design',
}
def first_addon_function(block):
    for line in block.splitlines():
        m = re.match(r'\s*#\d+ 0x[0-9a-f]+ in (.*?)(?:\(.*)? \S+ \((\S+)\+0x', line)
        if m and os.path.basename(m.group(2)) == 'fanotify.node':
            return m.group(1).strip()
    return None
errors, our_leaks, other_leaks, through_addon, processes = [], [], 0, 0, set()
excused, unknown_code = {}, 0
files = sorted(os.listdir(d))  # san.<pid> (one per process with a report) and jest.log
for name in files:
    text = open(os.path.join(d, name), errors='replace').read()
    if name != 'jest.log':
        processes.add(name.rsplit('.', 1)[-1])
    # UBSan: "file:line:col: runtime error: ..." and its stack.
    for m in re.finditer(r'^.*runtime error:.*(?:\n\s+#.*)*', text, re.M):
        errors.append(f'{name}: {m.group(0)}')
    # ASan errors other than leaks: "ERROR: AddressSanitizer: <kind>" up to its SUMMARY.
    for m in re.finditer(r'^==\d+==ERROR: AddressSanitizer:.*?(?=^SUMMARY|\Z)', text, re.M | re.S):
        errors.append(f'{name}: {m.group(0)[:8000]}')
    # Leaks: one block per allocation stack.
    for m in re.finditer(r'^(?:Direct|Indirect) leak of .*?(?=^\n|^(?:Direct|Indirect) leak|^SUMMARY|\Z)', text, re.M | re.S):
        block = m.group(0)
        if allocated_by_addon(block):
            fn = first_addon_function(block)
            if fn in known:
                excused[fn] = excused.get(fn, 0) + 1
            else:
                our_leaks.append(f'{name}: {block}')
        elif re.search(r'^\s*#1 .*\(<null>\+0x0\)', block, re.M):
            unknown_code += 1  # allocated by code unmapped before exit: see SANITIZE_PIN_ADDON
            our_leaks.append(f'{name}: (allocated by code unloaded before exit) {block}')
        else:
            other_leaks += 1
            if 'fanotify.node' in block:
                through_addon += 1
print(f'reports from {len(processes)} processes (and jest.log)')
print(f'ASan/UBSan errors: {len(errors)}; leaks allocated by the addon: {len(our_leaks)}; '
      f'other leak stacks (node, V8, libuv, tools): {other_leaks}, of which {through_addon} '
      f'allocated by V8/node while the addon called into them')
for fn, n in excused.items():
    print(f'excused by design: {n} x {fn}: {known[fn]}')
for e in errors + our_leaks:
    print('----\n' + e)
sys.exit(1 if errors or our_leaks else 0)
PY
if [ "$status" -eq 0 ]; then echo "sanitize: clean"; else echo "sanitize: FAILED (status $status)"; fi
exit "$status"
