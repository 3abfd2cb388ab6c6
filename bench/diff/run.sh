#!/bin/sh
# run.sh: benchmark "reprobox diff" against diffoscope on the same pairs and
# check that both find the same differences. See README.md for results.
#
#	bench/diff/run.sh [crate|tar.gz|tar.zst|tar]...   (default: all)
#
# Needs Go, cargo/rustc, python3, GNU time and diffoscope
# (apt-get install -y --no-install-recommends diffoscope). Inputs are generated
# under $WORK (default /tmp/reprobox-bench-diff) and reused by later runs; they
# are never committed.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-/tmp/reprobox-bench-diff}
mkdir -p "$work"
cd "$root"
go build -tags seccomp -o "$work/reprobox" ./cmd/reprobox
cases=${*:-crate tar.gz tar.zst tar}

# crate: two release builds (rlib + binary, debuginfo=2) of a generated crate
# with 120 functions and types, built in two different directories. They differ
# by the build path only. (With 400 functions diffoscope takes over 14 minutes.)
prepare_crate() {
	[ -f "$work/crate-b/benchcrate" ] && return
	for side in a variant-b/x; do
		bench/diff/gencrate.sh "$work/build/$side/benchcrate"
		(cd "$work/build/$side/benchcrate" && cargo build --release --offline -q)
	done
	mkdir -p "$work/crate-a" "$work/crate-b"
	cp "$work/build/a/benchcrate/target/release/benchcrate" "$work/build/a/benchcrate/target/release/libbenchcrate.rlib" "$work/crate-a/"
	cp "$work/build/variant-b/x/benchcrate/target/release/benchcrate" "$work/build/variant-b/x/benchcrate/target/release/libbenchcrate.rlib" "$work/crate-b/"
}

# tar.gz, tar.zst, tar: two tarballs of ~450 MB uncompressed (1501 members;
# ~230 MB with gzip) differing in five members (see gentar/main.go).
prepare_tar() {
	[ -f "$work/tar/b.tar.zst" ] && return
	mkdir -p "$work/tar"
	go run ./bench/diff/gentar -out "$work/tar"
}

# timed NAME CMD...: runs CMD, records wall seconds, max RSS and CPU seconds
# (user + system) in NAME.time.
timed() {
	name=$1
	shift
	/usr/bin/time -f "%e %M %U %S" -o "$work/$name.time" "$@" > "$work/$name.stdout" 2> "$work/$name.stderr" || true
	# GNU time prefixes "Command exited with non-zero status N" on a failure;
	# both tools exit 1 when the inputs differ.
	tail -n 1 "$work/$name.time" > "$work/$name.time.last"
	read -r secs kb user sys < "$work/$name.time.last"
	printf '%-20s %8.2f s wall %8.2f s CPU %6d MB max RSS\n' "$name" "$secs" "$(echo "$user + $sys" | bc)" "$((kb / 1024))"
}

for c in $cases; do
	case $c in
	crate)
		prepare_crate
		a=$work/crate-a b=$work/crate-b
		opts_ds="--exclude-directory-metadata=yes"
		opts_rb="--ignore-dir-metadata"
		;;
	tar.gz | tar.zst | tar)
		prepare_tar
		a=$work/tar/a.$c b=$work/tar/b.$c
		opts_ds=""
		opts_rb=""
		;;
	*)
		echo "unknown case $c" >&2
		exit 2
		;;
	esac
	echo "== $c: $a vs $b"
	# Warm the page cache so neither tool pays for the first read.
	cat "$a" "$b" > /dev/null 2>&1 || find "$a" "$b" -type f -exec cat {} + > /dev/null
	# shellcheck disable=SC2086
	timed "$c-reprobox" "$work/reprobox" diff $opts_rb --json "$a" "$b"
	cp "$work/$c-reprobox.stdout" "$work/$c-reprobox.json"
	# shellcheck disable=SC2086
	timed "$c-diffoscope" diffoscope $opts_ds --json "$work/$c-diffoscope.json" "$a" "$b"
	python3 - "$work/$c-diffoscope.time.last" "$work/$c-reprobox.time.last" <<'PY'
import sys
d = [float(x) for x in open(sys.argv[1]).read().split()]
r = [float(x) for x in open(sys.argv[2]).read().split()]
print(f"ratio diffoscope/reprobox: wall {d[0] / r[0]:.1f}x, CPU {(d[2] + d[3]) / (r[2] + r[3]):.1f}x")
PY
	python3 bench/diff/compare.py "$work/$c-diffoscope.json" "$work/$c-reprobox.json"
done
