#!/usr/bin/env bash
# Fuzzes the read()-buffer parser (src-native/parser.cc) with libFuzzer.
#
#   scripts/fuzz.sh                 60 seconds
#   scripts/fuzz.sh 600             600 seconds
#   scripts/fuzz.sh -runs=200000    exactly that many executions (the CI mode)
#   scripts/fuzz.sh -runs=10000000 -max_len=4096   any further libFuzzer flags
#   scripts/fuzz.sh crash-<sha1>    re-run one saved input (a file argument)
#   scripts/fuzz.sh --capture       re-capture the seed corpus from the kernel (root)
#
# Builds test/fuzz/parser_fuzz.cc + src-native/parser.cc with
# `clang++ -fsanitize=fuzzer,address,undefined -O1 -g` into build/fuzz/, then
# runs it on a working corpus (build/fuzz/corpus, new inputs go there) seeded
# from the committed kernel captures in test/fuzz/corpus. A crash (a sanitizer
# report or a broken invariant) leaves its input in build/fuzz/artifacts/ and
# makes this script exit non-zero. Needs clang and its runtime libraries:
#   apt-get install -y clang libclang-rt-14-dev      (Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"

if [ "${1:-}" = --capture ]; then
  # Real read() buffers from the running kernel: see test/fuzz/capture.c.
  ${CC:-cc} -O1 -Wall -o "$out/capture" test/fuzz/capture.c
  rm -f test/fuzz/corpus/*.bin
  mkdir -p test/fuzz/corpus
  exec "$out/capture" test/fuzz/corpus
fi

cxx=${CXX_FUZZ:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-19 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null; then cxx=$c; break; fi
  done
fi
if [ -z "$cxx" ]; then
  echo "fuzz.sh: clang++ not found; install it: apt-get install -y clang libclang-rt-14-dev" >&2
  exit 2
fi

bin=$out/parser_fuzz
srcs=(test/fuzz/parser_fuzz.cc src-native/parser.cc src-native/parser.h src-native/uapi.h)
if [ ! -x "$bin" ] || [ -n "$(find "${srcs[@]}" "$0" -newer "$bin" 2>/dev/null)" ]; then
  echo "== build ($cxx)"
  # -fno-sanitize-recover: an UBSan finding is a crash, not a line in the log.
  "$cxx" -std=c++17 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -O1 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
    test/fuzz/parser_fuzz.cc src-native/parser.cc -o "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi

# The first argument: a number of seconds, or libFuzzer flags / input files.
args=()
if [ $# -eq 0 ]; then
  args=(-max_total_time=60)
elif [[ $1 =~ ^[0-9]+$ ]]; then
  args=(-max_total_time="$1"); shift
fi
args+=("$@")

# A file argument: reproduce that input only, no corpus.
for a in "${args[@]}"; do
  if [ -f "$a" ]; then
    echo "== reproduce"
    exec "$bin" "${args[@]}"
  fi
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== fuzz: $bin ${args[*]}"
log=$out/last-run.log
status=0
"$bin" -max_len=8192 -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
  "${args[@]}" "$out/corpus" test/fuzz/corpus >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' INT TERM
# Progress: libFuzzer's pulse lines (powers of two) and its summary.
tail -n +1 -f --pid="$pid" "$log" | grep --line-buffered -E '^(INFO: (Seed|Running|Loaded|-max)|#[0-9]+\s+(INITED|DONE|pulse)|Done |stat::)' || true
status=0
wait "$pid" || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
if [ "$status" -ne 0 ]; then
  # The report: from the sanitizer's or the invariant check's first line.
  grep -n -m1 -E 'ERROR: |runtime error|invariant violated|deadly signal' "$log" >/dev/null &&
    sed -n "$(grep -n -m1 -E 'ERROR: |runtime error|invariant violated|deadly signal' "$log" | cut -d: -f1),\$p" "$log" | head -60 >&2
  echo "fuzz: FAILED (exit $status) after ${execs:-?} executions; input saved in $out/artifacts/; log: $log" >&2
  exit "$status"
fi
echo "fuzz: ${execs:-?} executions, no crash (corpus: $(ls "$out/corpus" | wc -l) + $(ls test/fuzz/corpus | wc -l) seeds)"
