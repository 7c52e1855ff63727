#!/usr/bin/env bash
# Kernel matrix: the jest suite on Debian's own kernels, each booted under
# qemu. The guest runs the host's node on the host's files: the root is shared
# read-only over 9p with a tmpfs overlay on top (scripts/kernels/init), so the
# repository is built once, here, and read at the same path inside.
#
#   bash scripts/kernels.sh                 # 6.1 and 6.12, the whole suite
#   bash scripts/kernels.sh 6.12            # one series
#   bash scripts/kernels.sh 6.1 -- test/errors.test.ts -t 'FS_ERROR'
#                                           # after --: arguments for jest
#   npm run test:kernels
#
# As root (apt, loop devices). Installs qemu, busybox-static, kmod, xz-utils
# and cpio when missing. For each series it takes the newest package that apt
# has a candidate for, downloads and unpacks it once, and builds its initramfs
# (busybox and the modules that the suite and the boot need).
#
# Environment:
#   FANOTIFY_KERNEL_CACHE    kernels and initramfs (/var/cache/fanotify-kernels)
#   FANOTIFY_KERNEL_LOGS     one folder per kernel (<repo>/kernel-logs): console.log
#                            (the serial console), jest.log, failures.txt (failed
#                            tests, first lines of their errors), kernel.log,
#                            probe.json (`fanotify probe --json` in the guest;
#                            node scripts/kernels/support-table.js makes the
#                            README's table of them)
#   FANOTIFY_KERNEL_TIMEOUT  seconds for one kernel, boot to poweroff (2400)
#   FANOTIFY_KERNEL_MEM      guest memory; /tmp is a tmpfs in it (4G)
#   FANOTIFY_TEST_TIME_SCALE how much longer the tests' bounds may be in the
#                            guest, where everything is emulated (4)
#
# Ends with a line per kernel and the sum, "N passed, N failed"; a kernel that
# did not finish counts as one failed. Exits 1 when anything failed.
set -euo pipefail
shopt -s inherit_errexit

repo=$(cd "$(dirname "$0")/.." && pwd -P)
cache=${FANOTIFY_KERNEL_CACHE:-/var/cache/fanotify-kernels}
logs=${FANOTIFY_KERNEL_LOGS:-$repo/kernel-logs}
limit=${FANOTIFY_KERNEL_TIMEOUT:-2400}
mem=${FANOTIFY_KERNEL_MEM:-4G}
modules=(virtio_pci 9pnet_virtio 9p overlay loop ext4 xfs btrfs)

series=()
jest_args=()
while [ $# -gt 0 ]; do
  case $1 in
    6.1|6.12) series+=("$1") ;;
    --) shift; jest_args=("$@"); break ;;
    *) echo "usage: $0 [6.1] [6.12] [-- jest arguments]" >&2; exit 2 ;;
  esac
  shift
done
[ ${#series[@]} -gt 0 ] || series=(6.1 6.12)

[ "$(id -u)" = 0 ] || { echo "kernels.sh: run as root" >&2; exit 2; }
case $repo in
  /proc/*|/sys/*|/dev/*) echo "kernels.sh: the guest cannot see $repo (it mounts its own /proc, /sys and /dev)" >&2; exit 2 ;;
  *$'\n'*) echo "kernels.sh: a newline in the repository's path" >&2; exit 2 ;;
esac

log() { echo "== $*"; }

# --- tools --------------------------------------------------------------
missing=()
for p in qemu-system-x86 busybox-static kmod xz-utils cpio; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi
export PATH=$PATH:/usr/sbin:/sbin   # depmod, modprobe

# --- kernels ------------------------------------------------------------
# The newest package of a series that apt can install: the archive lists old
# ABIs too, some of them without a candidate any more.
updated=
pick() {
  local re names n c
  case $1 in
    6.1) re='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12) re='^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
  esac
  names=$(apt-cache pkgnames "linux-image-$1" | grep -E "$re" | sort -rV || true)
  for n in $names; do
    c=$(apt-cache policy "$n" | awk '/Candidate:/ { print $2 }')
    if [ -n "$c" ] && [ "$c" != "(none)" ]; then echo "$n $c"; return; fi
  done
  if [ -z "$updated" ]; then updated=1; apt-get update -qq >&2; pick "$1"; fi
}

# Download and unpack once: $cache/<version>/root, with modules.dep made.
# Prints the kernel's version (6.1.0-NN-amd64).
fetch_kernel() {
  local pkg=$1 ver=$2 kver dir deb
  kver=${pkg#linux-image-}; kver=${kver%-unsigned}
  dir=$cache/$kver
  deb=${pkg}_${ver}_amd64.deb
  if [ "$(cat "$dir/deb" 2>/dev/null)" != "$deb" ]; then
    mkdir -p "$cache/debs"
    [ -f "$cache/debs/$deb" ] ||
      (cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2)
    rm -rf "$dir"; mkdir -p "$dir"
    dpkg-deb -x "$cache/debs/$deb" "$dir/root"
    depmod -b "$dir/root" "$kver"
    echo "$deb" >"$dir/deb"
  fi
  echo "$kver"
}

# The initramfs: busybox, /init, and the modules in load order (6.12's come
# xz-compressed, which busybox's insmod cannot read). Rebuilt when the init
# script, busybox or the module set changes.
make_initrd() {
  local kver=$1 dir=$cache/$1 key img tmp line f name
  local deps
  deps=$(for m in "${modules[@]}"; do
    modprobe -d "$dir/root" -S "$kver" --show-depends "$m" || { echo "no module $m in $kver" >&2; exit 1; }
  done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
  key=$(cat "$repo/scripts/kernels/init" /bin/busybox <(echo "$deps") | sha256sum | cut -c1-12)
  img=$dir/initrd-$key.cpio.gz
  if [ ! -f "$img" ]; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,dev,proc,sys,lib/modules}
    cp /bin/busybox "$tmp/bin/busybox"
    cp "$repo/scripts/kernels/init" "$tmp/init"; chmod 755 "$tmp/init"
    mknod -m 600 "$tmp/dev/console" c 5 1
    for f in $deps; do
      name=$(basename "$f")
      case $name in
        *.ko.xz) xz -dc "$f" >"$tmp/lib/modules/${name%.xz}"; name=${name%.xz} ;;
        *.ko.zst) zstd -qdc "$f" >"$tmp/lib/modules/${name%.zst}"; name=${name%.zst} ;;
        *) cp "$f" "$tmp/lib/modules/" ;;
      esac
      echo "$name" >>"$tmp/modules"
    done
    rm -f "$dir"/initrd-*.cpio.gz
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$img.part"
    mv "$img.part" "$img"
    rm -rf "$tmp"
  fi
  echo "$img"
}

kvers=()
for s in "${series[@]}"; do
  read -r pkg ver < <(pick "$s") || { echo "kernels.sh: apt has no linux-image package for $s" >&2; exit 1; }
  log "kernel $s: $pkg $ver"
  kvers+=("$(fetch_kernel "$pkg" "$ver")")
done

# --- the repository, built once for all guests ----------------------------
log "build (node scripts/build.js)"
(cd "$repo" && node scripts/build.js)
# test/package.test.ts packs the x64 prebuild and makes it when it is missing
# or stale: here that takes seconds, in a TCG guest minutes.
(cd "$repo" && node -e "require('./scripts/pack-test.js').ensurePrebuild({ log: console.log })")

# --- boot each kernel -----------------------------------------------------
# TCG, not KVM: KVM guests hang at boot on the machines this runs on.
# The root share is read-only; results is this kernel's log folder.
run_kernel() {
  local kver=$1 out=$logs/$1 initrd
  initrd=$(make_initrd "$kver")
  rm -rf "$out"; mkdir -p "$out"
  printf '%s\n' "$repo" >"$out/repo"
  printf '%s\n' "$PATH" >"$out/path"
  echo "$(ulimit -Sn) $(ulimit -Hn)" >"$out/nofile"
  echo "${FANOTIFY_TEST_TIME_SCALE:-4}" >"$out/timescale"
  printf '%s\n' "${jest_args[@]}" >"$out/args"
  log "boot $kver (log: $out/console.log)"
  # In the background, so that a signal to this script is handled at once
  # (the EXIT trap then stops qemu) rather than when qemu ends.
  timeout -k 10 "$limit" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m "$mem" \
    -nodefaults -no-user-config -display none -no-reboot -nic none \
    -serial stdio -monitor none -pidfile "$out/qemu.pid" \
    -kernel "$cache/$kver/root/boot/vmlinuz-$kver" -initrd "$initrd" \
    -append "console=ttyS0 quiet panic=-1 mitigations=off" \
    -fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
    -fsdev local,id=results,path="$out",security_model=none \
    -device virtio-9p-pci,fsdev=results,mount_tag=results \
    </dev/null 2>&1 | tee "$out/console.log" &
  wait $! || true
  rm -f "$out/qemu.pid"
}

stop_qemu() {
  local f pid
  for f in "$logs"/*/qemu.pid; do
    [ -f "$f" ] && read -r pid <"$f" && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = qemu-system-x86 ] &&
      kill "$pid" 2>/dev/null
  done
  return 0
}
trap stop_qemu EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

summary=()
total_passed=0 total_failed=0 status=0
for kver in "${kvers[@]}"; do
  start=$SECONDS
  run_kernel "$kver"
  took=$((SECONDS - start))
  out=$logs/$kver
  [ ! -f "$out/jest.log" ] || node "$repo/scripts/kernels/failures.js" "$out/jest.log" >"$out/failures.txt" || true
  totals=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/jest.log" 2>/dev/null | tail -n1 || true)
  if [ -n "$totals" ] && [ -f "$out/status" ]; then
    read -r p _ f _ <<<"$totals"
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
    [ "$f" = 0 ] && [ "$(cat "$out/status")" = 0 ] || status=1
    summary+=("kernel $kver: $totals (${took} s)")
  else
    # No totals: the guest timed out, crashed or jest never closed.
    total_failed=$((total_failed + 1)); status=1
    if [ "$took" -ge "$limit" ]; then why="timed out after ${limit} s"; else why="no totals (${took} s)"; fi
    summary+=("kernel $kver: did not finish, $why: see $out/console.log")
  fi
done

echo
echo "== kernel matrix (logs and failures.txt: $logs/<kernel>)"
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
exit $status
