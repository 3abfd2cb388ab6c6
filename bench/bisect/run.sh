#!/bin/sh
# bench/bisect/run.sh: reprobox bisect against `git bisect run` with the naive
# build-twice-and-compare script, on a history from testdata/bisect/gen.sh.
#
#   RUNS=10 KIND=hashset2 bench/bisect/run.sh [RESULTS.tsv]
#
# METHODS=naive (or reprobox) runs one method only; default both.
# KIND hashset2 is the hard case: the bad commits' output is one of two at
# random (a HashSet of two derive names), so the naive script sees two
# identical builds of a bad commit half the time. KIND hashset has nine names
# (9! orders): both find it. Every build, for both methods, is a normalized
# `reprobox build` in the same image (REPROBOX_IMAGE, default reprobox/rust),
# so the two methods differ only in their statistics. One TSV line per run:
# method, run, named commit, right (1/0), steps, builds, wall seconds.
# Needs root and the image; CPU-heavy (about 8 s a build on an idle 2-core
# machine).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
runs=${RUNS:-10} kind=${KIND:-hashset2} image=${REPROBOX_IMAGE:-reprobox/rust} methods=${METHODS:-reprobox naive}
out=${1:-/dev/stdout}   # written line by line: a cut-short run keeps its results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$top" && go build -tags seccomp -o "$work/reprobox" ./cmd/reprobox)
rbx=$work/reprobox
sh "$top/testdata/bisect/gen.sh" "$kind" "$work/repo" > "$work/gen.out"
first=$(sed -n 's/^first-bad: //p' "$work/gen.out")
good=$(git -C "$work/repo" rev-list --max-parents=0 HEAD)
now() { date +%s.%N; }

# The naive script: build twice, compare SHA256SUMS; 125 (skip) when a build
# fails. It counts its builds in $work/builds.
cat > "$work/naive.sh" <<NAIVE
#!/bin/sh
for i in 1 2; do
	echo x >> "$work/builds"
	"$rbx" build --image "$image" --out "$work/naive-out-\$i" --progress 0 >/dev/null 2>&1 || exit 125
done
cmp -s "$work/naive-out-1/SHA256SUMS" "$work/naive-out-2/SHA256SUMS"
NAIVE
chmod +x "$work/naive.sh"

echo "# kind=$kind runs=$runs first-bad=$first image=$image started $(date -u +%Y-%m-%dT%H:%MZ)" > "$out"
printf 'method\trun\tnamed\tright\tsteps\tbuilds\tseconds\n' >> "$out"
r=1
while [ "$r" -le "$runs" ]; do
	# reprobox bisect, no cache: every run builds from scratch.
	case $methods in *reprobox*)
	t0=$(now)
	"$rbx" bisect --good "$good" --image "$image" --no-cache --json "$work/rep.json" "$work/repo" >/dev/null 2>"$work/rbx.err" || true
	t1=$(now)
	named=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print((d.get("first_bad") or {}).get("hash","none"), len(d["steps"]), d["builds"])' "$work/rep.json")
	set -- $named
	printf 'reprobox-bisect\t%s\t%s\t%s\t%s\t%s\t%.0f\n' "$r" "$1" "$([ "$1" = "$first" ] && echo 1 || echo 0)" "$2" "$3" "$(echo "$t1 - $t0" | bc)" >> "$out"
	;; esac

	# git bisect run with the naive script, in a clone (it checks out).
	case $methods in *naive*)
	rm -rf "$work/clone" "$work/builds"; : > "$work/builds"
	git clone -q "$work/repo" "$work/clone"
	t0=$(now)
	(cd "$work/clone" && git bisect start HEAD "$good" >/dev/null && git bisect run "$work/naive.sh" > "$work/git.out" 2>&1 || true)
	t1=$(now)
	named=$(sed -n 's/^\([0-9a-f]\{40\}\) is the first bad commit.*/\1/p' "$work/git.out" | head -1)
	steps=$(cd "$work/clone" && git bisect log | grep -c '^git bisect \(good\|bad\|skip\)' || true)
	builds=$(wc -l < "$work/builds")
	printf 'git-bisect-naive\t%s\t%s\t%s\t%s\t%s\t%.0f\n' "$r" "${named:-none}" "$([ "$named" = "$first" ] && echo 1 || echo 0)" "$steps" "$builds" "$(echo "$t1 - $t0" | bc)" >> "$out"
	(cd "$work/clone" && git bisect reset >/dev/null 2>&1) || true
	;; esac
	r=$((r + 1))
done
echo "# finished $(date -u +%Y-%m-%dT%H:%MZ)" >> "$out"
