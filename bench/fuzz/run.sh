#!/usr/bin/env bash
# A fuzz campaign: every Fuzz target in the module for DURATION each (default
# 10m), JOBS targets at a time, one worker each (-parallel 1), at nice 19.
# Prints one line per target: package, target, elapsed, execs, result; a
# failing input is kept in the package's testdata/fuzz/ by go test itself.
#   bash bench/fuzz/run.sh [DURATION] [JOBS] [REGEXP] > results.txt
# REGEXP (grep -E) keeps only the "PKG FuzzNAME" lines that match it.
set -uo pipefail
cd "$(dirname "$0")/../.."
export CGO_ENABLED=1
dur=${1:-10m} jobs=${2:-4} only=${3:-.}
logdir=$(mktemp -d /tmp/reprobox-fuzz.XXXXXX)
targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func |$pkg |"
done | grep -E -- "$only")
echo "# go $(go env GOVERSION), $(nproc) cores, duration $dur, $jobs at a time, started $(date -u +%FT%TZ)"
run() {
  local pkg=$1 fn=$2
  local log="$logdir/$(echo "${pkg#./}-$fn" | tr / _).log"
  nice -n 19 go test -run '^$' -fuzz "^$fn\$" -fuzztime "$dur" -timeout 0 -parallel 1 "$pkg" >"$log" 2>&1
  local rc=$?
  local execs
  execs=$(grep -ao 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  local interesting
  interesting=$(grep -ao 'total: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  local res=ok; [ $rc -ne 0 ] && res="FAIL: $(grep -a -m1 -E 'Failing input|panic|--- FAIL' "$log")"
  echo "$pkg $fn execs=${execs:-?} corpus=${interesting:-?} $res"
}
export -f run; export dur logdir
echo "$targets" | xargs -P "$jobs" -L 1 bash -c 'run "$0" "$1"'
echo "# finished $(date -u +%FT%TZ); logs in $logdir"
