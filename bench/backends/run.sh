#!/usr/bin/env bash
# Container start-to-exit of `true` on both backends, in one run: the
# libcontainer backend (bench/start, in process and as a fresh process, with
# `runc run` beside it) and the containerd backend (BenchmarkTrue in
# sandbox/containerd, against a private containerd daemon the test binary
# starts). As root, from the repository root:
#
#   bench/backends/run.sh [N]
#
# N is the number of timed runs per variant (default 20). Needs the default
# image (make image), containerd and runc (make deps installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=1
n=${1:-20}
data=${REPROBOX_DATA_DIR:-/var/lib/reprobox}
image=${REPROBOX_IMAGE:-reprobox/rust}

go build -tags seccomp -o /tmp/reprobox-bench-reprobox ./cmd/reprobox
digest=$(/tmp/reprobox-bench-reprobox image inspect "$image" --data-dir "$data" --json | sed -n 's/.*"digest": *"sha256:\([0-9a-f]*\)".*/\1/p' | head -1)
rootfs=$data/rootfs/$digest
[ -d "$rootfs" ] || { echo "no unpacked root filesystem of $image at $rootfs (run a build with it once)"; exit 2; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "== runc $(runc --version | sed -n 1p | cut -d' ' -f3), containerd $(containerd --version | cut -d' ' -f3)"
echo
echo "== libcontainer (bench/start, rootfs of $image)"
go build -o /tmp/reprobox-bench-start ./bench/start
/tmp/reprobox-bench-start -rootfs "$rootfs" -n "$n"
echo
echo "== containerd (BenchmarkTrue, image $image imported by digest)"
go test -tags seccomp -count=1 -run '^$' -bench BenchmarkTrue -benchtime "${n}x" ./sandbox/containerd/ 2>&1 | grep -E '^(Benchmark|ok|FAIL|PASS|---)'

# A fixture crate's build time on each backend: `reprobox build` of
# testdata/crates/reproducible, the backends taking turns, against a
# private containerd daemon started here (its image imported before).
bin=/tmp/reprobox-bench-reprobox
if ! "$bin" build --help | grep -q -- '--backend'; then
  echo; echo "== fixture crate build: skipped (this reprobox has no --backend yet)"; exit 0
fi
d=$(mktemp -d /tmp/ctrd-bench-XXXXXX)
sed -n '/^version = 2/,/^  path = /p' README.md | sed "s#/var/lib/reprobox-containerd#$d#g; s#/run/reprobox-containerd#$d#g" > "$d/config.toml"
containerd --config "$d/config.toml" > "$d/log" 2>&1 &
cpid=$!
trap 'kill $cpid; wait $cpid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 50); do [ -S "$d/containerd.sock" ] && break; sleep 0.1; done
ctrd=(--backend containerd --containerd-address "$d/containerd.sock")
b() { "$bin" build testdata/crates/reproducible --image "$image" --data-dir "$data" --out "$d/out" "$@" >/dev/null 2>&1; }
b; b "${ctrd[@]}"   # warm-up: the image into containerd, caches
echo; echo "== fixture crate testdata/crates/reproducible: reprobox build, seconds (the backends take turns)"
printf '| run | libcontainer | containerd |\n|---|---|---|\n'
for i in $(seq 5); do
  t0=$(date +%s.%N); b; t1=$(date +%s.%N); b "${ctrd[@]}"; t2=$(date +%s.%N)
  awk -v i="$i" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "| %d | %.2f | %.2f |\n", i, b - a, c - b }'
done
