#!/bin/sh
# bench/localize/run.sh [FIXTURE...]
#
# The hidden cost of keeping cargo's intermediate outputs during a check:
# `reprobox check` with and without --no-intermediates on fixture crates,
# interleaved round by round (the order alternates) so that machine load
# affects both alike, with /proc/loadavg recorded before every measurement.
#
# Per measurement: wall time, builds, the seconds spent reading and keeping
# intermediates (summed over builds, from --timings), the report's intermediates
# (tree_bytes: the units' outputs summed over builds, what copies would
# cost; kept_bytes: distinct content kept at the end), and the peak disk
# use of the check's intermediates directory, sampled every 0.2 s with du
# (links to a build's own files count in it, though they cost nothing until
# the build directory is removed: an upper bound).
#
# Run as root from anywhere; nothing is written into the repository.
# Environment: WORK (default /tmp/bench-localize), BIN (reprobox binary,
# default: built from this checkout to $WORK/reprobox), IMAGE (default
# reprobox/rust), DATA_DIR (default /var/lib/reprobox), ROUNDS (default 3),
# VARY (default build_path), REPEATS (default 0).
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/bench-localize}
IMAGE=${IMAGE:-reprobox/rust}
DATA_DIR=${DATA_DIR:-/var/lib/reprobox}
ROUNDS=${ROUNDS:-3}
VARY=${VARY:-build_path}
REPEATS=${REPEATS:-0}
mkdir -p "$WORK"
BIN=${BIN:-$WORK/reprobox}
if [ ! -x "$BIN" ]; then
	(cd "$REPO" && CGO_ENABLED=1 go build -tags seccomp -o "$BIN" ./cmd/reprobox) || exit 3
fi
[ $# -gt 0 ] || set -- sysgen dep_build_path
OUT=$WORK/results.tsv
[ -f "$OUT" ] || printf 'fixture\tmode\tround\tseconds\tbuilds\tcollect_seconds\ttree_bytes\tkept_bytes\tpeak_du_bytes\tload\n' >"$OUT"
{
	date -u
	uname -srm
	nproc
	(cd "$REPO" && git rev-parse HEAD)
	"$BIN" image inspect "$IMAGE" --data-dir "$DATA_DIR" | head -1
} >"$WORK/versions.txt"

# peak PID: the largest du of any check-*/intermediates created by PID's
# check while it runs (0 with --no-intermediates).
sample() {
	peak=0
	# Until the check exits (a zombie, not yet waited for, counts as gone).
	while [ -e /proc/$1 ] && [ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]; do
		for d in "$DATA_DIR"/work/check-*/intermediates; do
			[ -d "$d" ] || continue
			# Only this check's store: its builds' IDs are unknown, but
			# other checks on the machine do not keep intermediates.
			b=$(du -sb "$d" 2>/dev/null | cut -f1)
			[ "${b:-0}" -gt "$peak" ] && peak=$b
		done
		sleep 0.2
	done
	echo "$peak"
}

measure() { # fixture mode round
	name=$1 mode=$2 round=$3
	flag=""
	[ "$mode" = without ] && flag=--no-intermediates
	js=$WORK/$name-$mode-$round.json
	load=$(cut -d' ' -f1 /proc/loadavg)
	start=$(date +%s.%N)
	(cd "$REPO/testdata/crates/$name" && exec "$BIN" check --image "$IMAGE" --data-dir "$DATA_DIR" \
		--out "$WORK/$name-$mode-$round" --json "$js" --jobs 2 --vary "$VARY" --repeats "$REPEATS" --timings $flag \
		>"$WORK/$name-$mode-$round.log" 2>&1) &
	pid=$!
	peak=$(sample $pid)
	wait $pid
	end=$(date +%s.%N)
	secs=$(echo "$end - $start" | bc)
	read -r builds tree kept collect <<EOT
$(python3 -c "
import json,sys
d=json.load(open('$js'))
i=d.get('intermediates') or {}
t=d.get('timings_seconds') or {}
print(d['builds'], i.get('tree_bytes',0), i.get('kept_bytes',0), '%.2f' % t.get('intermediates',0))")
EOT
	printf '%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$mode" "$round" "$secs" "$builds" "$collect" "$tree" "$kept" "$peak" "$load" >>"$OUT"
	tail -1 "$OUT"
}

r=1
while [ $r -le "$ROUNDS" ]; do
	for name in "$@"; do
		if [ $((r % 2)) -eq 1 ]; then
			measure "$name" with $r
			measure "$name" without $r
		else
			measure "$name" without $r
			measure "$name" with $r
		fi
	done
	r=$((r + 1))
done
