#!/usr/bin/env bash
# Build overhead of the sandbox: the same crate, built by the same cargo and
# rustc (the image's), once in a plain chroot of the image's root filesystem on
# the host (an overlay, no namespaces, cgroups, time shim or overlay source),
# once with `reprobox build` (container, normalized environment, time shim,
# source snapshot and overlay). Runs alternate, so machine load
# hits both alike. Both use 2 CPUs (reprobox's normalized cpu count).
#
# The chroot build runs in a cgroup of its own, as the container does: under
# cgroup v1 a container's threads share one scheduling entity (its cgroup),
# while threads in the root cgroup compete one by one, so on a loaded machine a
# chroot in the root cgroup gets more CPU than any container and the
# comparison would measure the scheduler, not the sandbox. HOST_CGROUP=0 runs
# it in the caller's cgroup instead.
#
# usage: bench/build/run.sh [RUNS] (as root; make setup first)
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${REPROBOX:-$repo/reprobox}
image=${IMAGE:-reprobox/rust}
data=${REPROBOX_DATA_DIR:-/var/lib/reprobox}
work=$(mktemp -d /var/tmp/reprobox-bench-build.XXXXXX)
trap 'umount -R -l "$work/root" 2>/dev/null || true; rm -rf "$work"' EXIT

"$here/gencrate.sh" "$work/crate" "${MODULES:-60}"
digest=$("$bin" image inspect "$image" --data-dir "$data" --json | sed -n 's/.*"digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' | head -1)
rootfs="$data/rootfs/${digest#sha256:}"
[ -d "$rootfs" ] || { echo "no rootfs for $image at $rootfs" >&2; exit 1; }

mkdir -p "$work/root" "$work/upper" "$work/ovl"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/ovl" "$work/root"
mount -t proc proc "$work/root/proc"
mount -t tmpfs tmpfs "$work/root/tmp"
mount --rbind /dev "$work/root/dev"

cg=""
if [ "${HOST_CGROUP:-1}" = 1 ] && [ -d /sys/fs/cgroup/cpu ]; then
  # Beside the containers: all of them share the /reprobox parent's weight.
  cg=/sys/fs/cgroup/cpu/reprobox/bench-host
  mkdir -p /sys/fs/cgroup/cpu/reprobox "$cg"
  trap 'umount -R -l "$work/root" 2>/dev/null || true; rm -rf "$work"; rmdir "$cg" 2>/dev/null || true' EXIT
fi
host_build() {
  rm -rf "$work/root/build" && mkdir -p "$work/root/build" && cp -a "$work/crate" "$work/root/build/src"
  local t0 t1
  t0=$(date +%s.%N)
  CG="$cg" sh -c '[ -z "$CG" ] || echo $$ > "$CG/cgroup.procs"; exec "$@"' sh taskset -c 0-1 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp CARGO_HOME=/tmp/.cargo LANG=C.UTF-8 chroot "$work/root" sh -c 'cd /build/src && cargo build --release --offline -q'
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
box_build() {
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" build "$work/crate" --image "$image" --data-dir "$data" --out "$work/out" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

host_build >/dev/null; box_build >/dev/null   # warm caches
hs=(); bs=()
for i in $(seq "$runs"); do
  h=$(host_build); b=$(box_build)
  hs+=("$h"); bs+=("$b")
  printf 'run %d: host %.2fs  reprobox %.2fs  load %s\n' "$i" "$h" "$b" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mh=$(median "${hs[@]}"); mb=$(median "${bs[@]}")
printf 'median of %d: host %.2fs, reprobox %.2fs, overhead %+.1f%%\n' "$runs" "$mh" "$mb" "$(echo "($mb - $mh) * 100 / $mh" | bc -l)"
