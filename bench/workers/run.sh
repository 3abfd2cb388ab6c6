#!/bin/sh
# bench/workers/run.sh [FIXTURE...]
#
# `reprobox check` of fixture crates on one containerd worker and on two, side
# by side in one run: for each fixture, a check with --addr A (one worker, one
# build at a time) then a check with --addr A --addr B (two workers, one build
# each, so two at a time), alternating which goes first from fixture to
# fixture so that machine load hits both alike. Both daemons are private
# (their own root, state and socket under $WORK), started here and stopped at
# the end; they run on this host, so two workers share its CPUs.
#
# Run as root on Debian 12 (containerd, runc) from anywhere; nothing is written
# into the repository. Everything goes to $WORK (default /tmp/bench-workers):
#   results.tsv     one line per check: fixture, workers, wall seconds, builds,
#                   builds per worker, verdict, load average before
#   builds.tsv      one line per build: fixture, workers, build, set, worker,
#                   seconds (from the report's per_build with --timings)
#   NAME-wN.{json,log}   each check's report and stderr
#   versions.txt    date, machine, load, reprobox commit, containerd version
#
# Environment: WORK, BIN (reprobox binary, default /tmp/reprobox-workers; built
# unless BUILD=0), IMAGE (default reprobox/rust), DATA (data directory,
# default /var/lib/reprobox), REPEATS (default the check's default).
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/bench-workers}
BIN=${BIN:-/tmp/reprobox-workers}
IMAGE=${IMAGE:-reprobox/rust}
DATA=${DATA:-/var/lib/reprobox}
BUILD=${BUILD:-1}
REPEATS=${REPEATS:-}
if [ $# -gt 0 ]; then FIXTURES=$*; else FIXTURES="reproducible time two_factors dist nondeterministic"; fi

mkdir -p "$WORK"
if [ "$BUILD" = 1 ]; then
	(cd "$REPO" && CGO_ENABLED=1 go build -tags seccomp -o "$BIN" ./cmd/reprobox) || exit 3
fi

# daemon N: a private containerd under $WORK/dN (the configuration
# sandbox/containerd/ctrtest writes), its socket $WORK/dN/containerd.sock.
daemon() {
	d=$WORK/d$1
	rm -rf "$d" && mkdir -p "$d"
	cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
	containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 &
	echo $! >"$d/pid"
	i=0
	while [ ! -S "$d/containerd.sock" ]; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "containerd $1 did not start: $d/containerd.log" >&2; exit 3; }
		sleep 0.1
	done
}
stop() {
	for n in 1 2; do
		[ -f "$WORK/d$n/pid" ] && kill "$(cat "$WORK/d$n/pid")" 2>/dev/null
	done
	sleep 2
	for n in 1 2; do
		umount -R -l "$WORK/d$n/root" "$WORK/d$n/state" 2>/dev/null
	done
}
trap stop EXIT
daemon 1
daemon 2
A=$WORK/d1/containerd.sock
B=$WORK/d2/containerd.sock

{
	date -u +%Y-%m-%dT%H:%M:%SZ
	echo "host: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "reprobox: $(cd "$REPO" && git rev-parse --short HEAD)"
	containerd --version
	echo "fixtures: $FIXTURES"
} >"$WORK/versions.txt"
[ -f "$WORK/results.tsv" ] || printf 'fixture\tworkers\twall_s\tbuilds\tper_worker\tverdict\tload_before\n' >"$WORK/results.tsv"
[ -f "$WORK/builds.tsv" ] || printf 'fixture\tworkers\tbuild\tset\tworker\tseconds\n' >"$WORK/builds.tsv"

# measure FIXTURE N ADDR...: one check on the N workers given.
measure() {
	name=$1 n=$2
	shift 2
	addrs=""
	for a in "$@"; do addrs="$addrs --addr $a"; done
	load=$(cut -d' ' -f1 /proc/loadavg)
	rep=$WORK/$name-w$n
	rm -rf "$rep.out"
	start=$(date +%s.%N)
	# shellcheck disable=SC2086
	(cd "$REPO/testdata/crates/$name" && "$BIN" check --image "$IMAGE" --data-dir "$DATA" --backend containerd \
		$addrs --worker-jobs 1 --timings ${REPEATS:+--repeats $REPEATS} --out "$rep.out" --json "$rep.json") \
		>"$rep.stdout" 2>"$rep.log"
	code=$?
	end=$(date +%s.%N)
	wall=$(echo "$end - $start" | bc)
	if [ $code -gt 1 ]; then
		printf '%s\t%d\t%.1f\t-\t-\texit %d\t%s\n' "$name" "$n" "$wall" "$code" "$load" >>"$WORK/results.tsv"
		return
	fi
	jq -r --arg f "$name" --arg n "$n" --arg w "$wall" --arg l "$load" '
		[$f, $n, ($w | tonumber * 10 | round / 10 | tostring), (.builds | tostring),
		 ([.workers | to_entries[] | "\(.key | split("/")[-2])=\(.value)"] | join(",")),
		 (if .reproducible then "reproducible" elif (.culprits | length) > 0 then "culprits " + (.culprits | join("+")) else "nondeterministic" end),
		 $l] | @tsv' "$rep.json" >>"$WORK/results.tsv"
	jq -r --arg f "$name" --arg n "$n" '.per_build[] |
		[$f, $n, (.n | tostring), (if (.set | length) == 0 then "control" else (.set | join(",")) end),
		 (.worker | split("/")[-2]), (.seconds * 10 | round / 10 | tostring)] | @tsv' "$rep.json" >>"$WORK/builds.tsv"
}

# Warm-up, not measured: each daemon imports and unpacks the image once.
for a in "$A" "$B"; do
	(cd "$REPO/testdata/crates/reproducible" && "$BIN" build --image "$IMAGE" --data-dir "$DATA" --backend containerd \
		--addr "$a" --out "$WORK/warmup.out") >"$WORK/warmup.log" 2>&1 || { echo "warm-up on $a failed: $WORK/warmup.log" >&2; exit 3; }
done

i=0
for f in $FIXTURES; do
	if [ $((i % 2)) = 0 ]; then
		measure "$f" 1 "$A"
		measure "$f" 2 "$A" "$B"
	else
		measure "$f" 2 "$A" "$B"
		measure "$f" 1 "$A"
	fi
	i=$((i + 1))
done
column -t -s "$(printf '\t')" "$WORK/results.tsv"
