#!/bin/bash
# run-checks.sh: the recorded runs of the rustc dist recipe. Each run writes
# results/NAME/ in this directory: run.txt (the exact command, start and end
# times, duration, exit status, host load, reprobox commit), stdout.txt (the
# report or SHA256SUMS), stderr.txt (progress), and report.json or
# SHA256SUMS/record.json. Artifacts stay under OUT_ROOT (default
# /var/tmp/rustc-runs), outside the repository.
#
#   run-checks.sh SRC_DIR RUN...
#
# SRC_DIR is a tree prepared by prepare.sh. RUN is one of:
#   rust-src          reprobox check, every factor, of `x.py dist rust-src`
#   rust-std-stage0   reprobox check, every factor, of `x.py dist rust-std --stage 0`
#   noremap-path      reprobox check --vary build_path of `x.py dist rust-std --stage 0`
#                     with rust.remap-debuginfo = false
#   stage1-a stage1-b reprobox build of `x.py dist rust-std rustc --stage 1`, twice
#                     (compare results/stage1-a/SHA256SUMS and results/stage1-b/SHA256SUMS)
#
# Environment: REPROBOX (default reprobox), OUT_ROOT, REPEATS (default 1: each
# build of these costs minutes; see the README's "How check decides"),
# JOBS (default 2), SEED (default 1).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
REPROBOX=${REPROBOX:-reprobox}
OUT_ROOT=${OUT_ROOT:-/var/tmp/rustc-runs}
REPEATS=${REPEATS:-1}
JOBS=${JOBS:-2}
SEED=${SEED:-1}
[ $# -ge 2 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
src=$(realpath "$1"); shift

run() { # NAME reprobox-args...
	local name=$1; shift
	local res=$here/results/$name out=$OUT_ROOT/$name
	rm -rf "$res" "$out"
	mkdir -p "$res" "$OUT_ROOT"
	local start end rc
	start=$(date +%s)
	{
		echo "command: ${REPROBOX##*/} $*"
		echo "started: $(date -u -d @"$start" +%Y-%m-%dT%H:%M:%SZ)"
		echo "host: $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "reprobox: $(command -v "$REPROBOX") sha256 $(sha256sum "$(command -v "$REPROBOX")" | cut -c1-16)…, built from ${REPROBOX_COMMIT:-the work tree at $(git -C "$here" log -1 --format=%h 2>/dev/null)}"
		echo "source: $src ($(cut -d' ' -f1 "$src/version"))"
	} >"$res/run.txt"
	echo "run-checks.sh: $name: ${REPROBOX##*/} $*" >&2
	"$REPROBOX" "$@" >"$res/stdout.txt" 2> >(tee "$res/stderr.txt" >&2)
	rc=$?
	end=$(date +%s)
	{
		echo "ended: $(date -u -d @"$end" +%Y-%m-%dT%H:%M:%SZ)"
		echo "duration: $((end - start)) s"
		echo "exit status: $rc"
		echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >>"$res/run.txt"
	for f in report.json SHA256SUMS record.json; do
		[ -f "$out/$f" ] && cp "$out/$f" "$res/$f"
	done
	echo "run-checks.sh: $name: exit $rc in $((end - start)) s" >&2
}

for r in "$@"; do
	case $r in
	rust-src)
		run rust-src check "$src" --repeats "$REPEATS" --jobs "$JOBS" --seed "$SEED" --timings \
			--out "$OUT_ROOT/rust-src" \
			-- python3 x.py dist rust-src ;;
	rust-std-stage0)
		run rust-std-stage0 check "$src" --repeats "$REPEATS" --jobs "$JOBS" --seed "$SEED" --timings \
			--out "$OUT_ROOT/rust-std-stage0" \
			-- python3 x.py dist rust-std --stage 0 ;;
	noremap-path)
		run noremap-path check "$src" --vary build_path --repeats "$REPEATS" --jobs "$JOBS" --seed "$SEED" --timings \
			--out "$OUT_ROOT/noremap-path" \
			-- python3 x.py dist rust-std --stage 0 --set rust.remap-debuginfo=false ;;
	stage1-a|stage1-b)
		run "$r" build "$src" --out "$OUT_ROOT/$r" \
			-- python3 x.py dist rust-std rustc --stage 1 ;;
	*) echo "run-checks.sh: unknown run $r" >&2; exit 2 ;;
	esac
done
