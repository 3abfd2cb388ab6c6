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
