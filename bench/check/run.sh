#!/bin/sh
# bench/check/run.sh [FIXTURE...]
#
# Builds and wall time of `reprobox check` before and after the sequential
# test (issue 16) and of Debian's `reprotest --auto-build`, on the fixture
# crates in testdata/crates, interleaved fixture by fixture so that machine
# load affects all three alike (the order alternates between fixtures), with
# /proc/loadavg recorded before and after every measurement. Then NONDET_RUNS
# more checks (after only) of the nondeterministic fixture, with seeds 1..N.
#
# Run as root on Debian 12 from anywhere; nothing is written into the
# repository. Everything goes to $WORK (default /tmp/bench-check):
#   results.tsv          one line per measurement, appended to (README.md)
#   versions.txt         date, machine, load, reprobox commits, tool versions
#   rb/NAME-TOOL.{log,json} and rb/NAME-TOOL/   reprobox check
#   rt/NAME.log and rt/NAME/                    reprotest log and --store-dir
#   src/NAME/                                   the copy reprotest builds from
#
# Environment: WORK, BIN (reprobox after, default /tmp/reprobox-bench built
# from this checkout), BEFORE (reprobox before, default
# /tmp/reprobox-bench-before built from BEFORE_REV, default 7cca756), IMAGE
# (default reprobox/rust), TIMEOUT (seconds per measurement, default 1200),
# SETUP=0 to skip installing packages, the host set-up and building,
# NONDET_RUNS=N (default 20), TOOLS (default "before after reprotest").
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/bench-check}
BIN=${BIN:-/tmp/reprobox-bench}
BEFORE=${BEFORE:-/tmp/reprobox-bench-before}
BEFORE_REV=${BEFORE_REV:-7cca756}
TOOLS=${TOOLS:-before after reprotest}
NONDET_RUNS=${NONDET_RUNS:-20}
IMAGE=${IMAGE:-reprobox/rust}
TIMEOUT=${TIMEOUT:-1200}
SETUP=${SETUP:-1}
PY=/usr/bin/python3
# The base PATH of reprotest's builds: the host's Debian toolchain (cargo
# 0.66, rustc 1.63 from the `cargo` package the tests install), not rustup's.
# Installing rustc-web 1.96 (the image's) would remove that package, which
# other tests on a shared machine use, so reprotest builds with 1.63 from a
# copy whose Cargo.lock (version 4) is removed: cargo 0.66 makes a new one
# (the fixtures have no registry dependencies). It equals sudo's secure_path
# on Debian, so the builds reprotest runs through sudo see the same PATH.
RT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

ALL="reproducible time build_path hostname umask fileordering num_cpus two_factors dist nondeterministic
locale timezone domainname user home kernel aslr env exec_path dep_build_path sysgen
locale_case locale_sort locale_printf pid pid_shell two_quiet"
# Fixtures: the arguments, else $FIXTURES (may be empty: EXTRAS only), else all.
if [ $# -gt 0 ]; then FIXTURES=$*; else FIXTURES=${FIXTURES-$ALL}; fi

mkdir -p "$WORK/rb" "$WORK/rt" "$WORK/src"

if [ "$SETUP" = 1 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y reprotest diffoscope-minimal faketime disorderfs sudo >/dev/null
	# user_group needs an existing user other than root (and sudo).
	id rtbuild >/dev/null 2>&1 || useradd -m rtbuild
	# locales varies LC_ALL to et_EE.UTF-8; without that locale compiled, glibc
	# falls back to C and the variation changes nothing for sort(1).
	locale -a | grep -qx et_EE.utf8 || localedef -i et_EE -f UTF-8 et_EE.UTF-8
	(cd "$REPO" && CGO_ENABLED=1 go build -tags seccomp -o "$BIN" ./cmd/reprobox) || exit 3
	if [ ! -x "$BEFORE" ]; then
		tree=$(mktemp -d)
		git -C "$REPO" archive "$BEFORE_REV" | tar -x -C "$tree" &&
			(cd "$tree" && CGO_ENABLED=1 go build -tags seccomp -o "$BEFORE" ./cmd/reprobox) || exit 3
		rm -rf "$tree"
	fi
fi
# reprotest 0.7.23 runs `sudo -h localhost CMD` (user_group, domain_host with
# use_sudo); sudo 1.9.13 on bookworm refuses -h except when listing ("a remote
# host may only be specified when listing privileges"), so every build with
# those variations fails. We run a copy of Debian's reprotest package with that
# one line changed (SUDO = ['sudo']). A `sudo` shim earlier in PATH is no
# fix: sudo's secure_path resets PATH, and the changed PATH is then blamed on
# user_group and domain_host.
rm -rf "$WORK/reprotest-py" && mkdir -p "$WORK/reprotest-py"
cp -a /usr/lib/python3/dist-packages/reprotest "$WORK/reprotest-py/"
sed -i "s/^SUDO = \['sudo', '-h', 'localhost'\]$/SUDO = ['sudo']/" "$WORK/reprotest-py/reprotest/build.py"
grep -qx "SUDO = \['sudo'\]" "$WORK/reprotest-py/reprotest/build.py" || { echo "patching reprotest failed" >&2; exit 3; }
REPROTEST=$WORK/reprotest-py/reprotest-patched
printf '#!%s\nimport sys\nsys.path.insert(0, "%s")\nfrom reprotest import main\nsys.exit(main())\n' \
	"$PY" "$WORK/reprotest-py" >"$REPROTEST"
chmod +x "$REPROTEST"

# What was measured, next to the results.
{
	echo "date: $(date -u +%FT%TZ)"
	echo "machine: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "loadavg at start: $(cat /proc/loadavg)"
	echo "reprobox after: $BIN sha256 $(sha256sum "$BIN" | cut -d' ' -f1), built from $(git -C "$REPO" rev-parse --short HEAD) with $(git -C "$REPO" status --porcelain --untracked-files=no | wc -l) modified tracked files"
	echo "reprobox before: $BEFORE sha256 $(sha256sum "$BEFORE" | cut -d' ' -f1), built from $BEFORE_REV"
	echo "image: $($BIN image ls 2>/dev/null | awk -v n="${IMAGE%%@*}" '$1 == n {print $1 "@" $2}')"
	echo "host: $(/usr/bin/rustc --version); $(/usr/bin/cargo --version)"
	dpkg-query -W -f '${Package} ${Version}\n' reprotest diffoscope-minimal disorderfs faketime sudo rustc cargo
} >"$WORK/versions.txt"

RESULTS=$WORK/results.tsv
[ -f "$RESULTS" ] || printf 'fixture\ttool\trc\tbuilds\twall_s\tverdict\tload_before\tload_after\tstarted\n' >"$RESULTS"

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# toml NAME FIELD: the fixture's build command (shell-quoted), first artifact,
# or source_date_epoch, from its reprobox.toml.
toml() {
	$PY - "$REPO/testdata/crates/$1/reprobox.toml" "$2" <<'EOF'
import shlex, sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
print({"command": lambda: shlex.join(c["command"]),
       "artifact": lambda: c["artifacts"][0],
       "sde": lambda: c.get("source_date_epoch", 1700000000)}[sys.argv[2]]())
EOF
}

# reprobox check with binary $2 (before or after) and its defaults; extra
# arguments are passed on.
run_rb() {
	name=$1 tool=$2 out=$WORK/rb/$1$SUFFIX-$2
	shift 2
	bin=$BIN
	[ "$tool" = before ] && bin=$BEFORE
	rm -rf "$out" "$out.json"
	lb=$(load) start=$(date -u +%FT%TZ) t0=$(now)
	(cd "$REPO" && timeout -k 30 "$TIMEOUT" "$bin" check "testdata/crates/$name" --image "$IMAGE" \
		--out "$out" --json "$out.json" --jobs 2 "$@") >"$out.log" 2>&1
	rc=$?
	t1=$(now) la=$(load)
	set -- $($PY - "$out.json" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("-", "no-json"); sys.exit()
if d.get("undecided"):
    v = "undecided"
elif d.get("nondeterministic"):
    v = "nondeterministic"
elif d.get("reproducible"):
    v = "reproducible"
else:
    v = ",".join(d.get("culprits") or []) or "?"
    ev = sorted({f for a in d.get("artifacts", []) for f in (a.get("evidence_factors") or [])})
    if ev:
        v += "(evidence:" + ",".join(ev) + ")"
print(d.get("builds", "-"), v)
EOF
)
	printf '%s\treprobox-%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name$SUFFIX" "$tool" "$rc" "$1" \
		"$(elapsed "$t0" "$t1")" "$2" "$lb" "$la" "$start" | tee -a "$RESULTS"
}

# reprotest --auto-build on a fresh copy of the fixture, every variation on,
# run with a clean environment whose PATH finds Debian's cargo. Arguments after
# the fixture's name are passed on to reprotest.
run_rt() {
	name=$1 src=$WORK/src/$1 store=$WORK/rt/$1$SUFFIX
	shift
	rm -rf "$src" "$store" && cp -a "$REPO/testdata/crates/$name" "$src" && rm -f "$src/Cargo.lock"
	cmd=$(toml "$name" command) artifact=$(toml "$name" artifact) sde=$(toml "$name" sde)
	lb=$(load) start=$(date -u +%FT%TZ) t0=$(now)
	(cd "$src" && timeout -k 30 "$TIMEOUT" env -i PATH="$RT_PATH" HOME=/root LANG=C.UTF-8 \
		SOURCE_DATE_EPOCH="$sde" \
		"$REPROTEST" --verbosity 1 --auto-build --min-cpus 1 \
		--vary=user_group.available+=rtbuild:rtbuild --vary=domain_host.use_sudo=1 "$@" \
		--store-dir "$store" -c "$cmd" . "$artifact") >"$store.log" 2>&1
	rc=$?
	t1=$(now) la=$(load)
	# Every build reprotest starts logs `build "NAME": FIX …/vary …` first.
	builds=$(grep -c '^INFO:reprotest:build "' "$store.log")
	verdict=$($PY - "$store.log" "$rc" <<'EOF'
import sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
for i, l in enumerate(lines):
    if l.startswith("Observed unreproducibility when varying"):
        print("blames:" + ",".join(lines[i + 1].split()) if lines[i + 1].strip() else "blames:(none)"); break
    if l.startswith("Not reproducible, even when fixing"):
        print("not-reproducible-when-all-fixed(gave-up)"); break
    if l.startswith("Reproducible, even when varying"):
        print("reproducible"); break
else:
    err = [l for l in lines if "Error" in l or "error" in l]
    print("failed(rc=%s):%s" % (sys.argv[2], (err[-1] if err else (lines[-1] if lines else "")).replace("\t", " ")[:150]))
EOF
)
	printf '%s\treprotest\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name$SUFFIX" "$rc" "$builds" \
		"$(elapsed "$t0" "$t1")" "$verdict" "$lb" "$la" "$start" | tee -a "$RESULTS"
}

# tool NAME TOOL: one measurement, if TOOL is in $TOOLS.
tool() {
	case " $TOOLS " in *" $2 "*) ;; *) return ;; esac
	if [ "$2" = reprotest ]; then run_rt "$1"; else run_rb "$1" "$2"; fi
}

SUFFIX=
i=0
for name in $FIXTURES; do
	if [ $((i % 2)) = 0 ]; then
		tool "$name" before; tool "$name" after; tool "$name" reprotest
	else
		tool "$name" reprotest; tool "$name" after; tool "$name" before
	fi
	i=$((i + 1))
done

# NONDET_RUNS=N: N checks (after) of the nondeterministic fixture, seeds 1..N
# (its output is one of two at random, so a single check shows little).
k=1
while [ "$k" -le "$NONDET_RUNS" ]; do
	SUFFIX="#$k"
	run_rb nondeterministic after --seed "$k"
	k=$((k + 1))
done
