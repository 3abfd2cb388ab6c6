#!/bin/sh
# bench/check/run.sh [FIXTURE...]
#
# Builds and wall time of `reprobox check` (default --repeats 7, and --repeats 0)
# and of Debian's `reprotest --auto-build` on the fixture crates in
# testdata/crates, interleaved fixture by fixture so that machine load affects
# all three alike (the order alternates between fixtures), with /proc/loadavg
# recorded before and after every measurement.
#
# Run as root on Debian 12 from anywhere; nothing is written into the
# repository. Everything goes to $WORK (default /tmp/bench-check):
#   results.tsv          one line per measurement, appended to (README.md)
#   versions.txt         date, machine, load, reprobox commit, tool versions
#   rb/NAME-rN.{log,json} and rb/NAME-rN/   reprobox check, --repeats N
#   rt/NAME.log and rt/NAME/                 reprotest log and --store-dir
#   src/NAME/                                the copy reprotest builds from
#
# Environment: WORK, BIN (reprobox binary, default /tmp/reprobox-bench),
# IMAGE (default reprobox/rust), TIMEOUT (seconds per measurement, default
# 1200), SETUP=0 to skip installing packages and the host set-up,
# NONDET_RUNS=N to add N rounds on the nondeterministic fixture, EXTRAS=1 for
# two more reprotest runs that explain its misses (see the end).
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/bench-check}
BIN=${BIN:-/tmp/reprobox-bench}
IMAGE=${IMAGE:-reprobox/rust}
TIMEOUT=${TIMEOUT:-1200}
SETUP=${SETUP:-1}
PY=/usr/bin/python3
# The base PATH of reprotest's builds: Debian's toolchain (/usr/bin/cargo from
# cargo-web, /usr/bin/rustc from rustc-web), not rustup's in /root/.cargo/bin.
# It equals sudo's secure_path on Debian, so the builds reprotest runs through
# sudo see the same PATH.
RT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

ALL="reproducible time build_path hostname umask fileordering num_cpus two_factors dist nondeterministic
locale timezone domainname user home kernel aslr env exec_path"
# Fixtures: the arguments, else $FIXTURES (may be empty: EXTRAS only), else all.
if [ $# -gt 0 ]; then FIXTURES=$*; else FIXTURES=${FIXTURES-$ALL}; fi

mkdir -p "$WORK/rb" "$WORK/rt" "$WORK/src"

if [ "$SETUP" = 1 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y reprotest diffoscope-minimal faketime disorderfs sudo rustc-web cargo-web >/dev/null
	# user_group needs an existing user other than root (and sudo).
	id rtbuild >/dev/null 2>&1 || useradd -m rtbuild
	# locales varies LC_ALL to et_EE.UTF-8; without that locale compiled, glibc
	# falls back to C and the variation changes nothing for sort(1).
	locale -a | grep -qx et_EE.utf8 || localedef -i et_EE -f UTF-8 et_EE.UTF-8
	(cd "$REPO" && CGO_ENABLED=1 go build -tags seccomp -o "$BIN" ./cmd/reprobox) || exit 3
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
	echo "reprobox: $BIN sha256 $(sha256sum "$BIN" | cut -d' ' -f1), built from $(git -C "$REPO" rev-parse --short HEAD) with $(git -C "$REPO" status --porcelain --untracked-files=no | wc -l) modified tracked files"
	echo "image: $($BIN image ls 2>/dev/null | awk -v n="${IMAGE%%@*}" '$1 == n {print $1 "@" $2}')"
	echo "host: $(/usr/bin/rustc --version); $(/usr/bin/cargo --version)"
	dpkg-query -W -f '${Package} ${Version}\n' reprotest diffoscope-minimal disorderfs faketime sudo rustc-web cargo-web
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

# reprobox check, --repeats $2.
run_rb() {
	name=$1 repeats=$2 out=$WORK/rb/$1$SUFFIX-r$2
	rm -rf "$out" "$out.json"
	lb=$(load) start=$(date -u +%FT%TZ) t0=$(now)
	(cd "$REPO" && timeout -k 30 "$TIMEOUT" "$BIN" check "testdata/crates/$name" --image "$IMAGE" \
		--out "$out" --json "$out.json" --jobs 2 --repeats "$repeats") >"$out.log" 2>&1
	rc=$?
	t1=$(now) la=$(load)
	set -- $($PY - "$out.json" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("-", "no-json"); sys.exit()
if d.get("nondeterministic"):
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
	printf '%s\treprobox-r%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name$SUFFIX" "$repeats" "$rc" "$1" \
		"$(elapsed "$t0" "$t1")" "$2" "$lb" "$la" "$start" | tee -a "$RESULTS"
}

# reprotest --auto-build on a fresh copy of the fixture, every variation on,
# run with a clean environment whose PATH finds Debian's cargo. Arguments after
# the fixture's name are passed on to reprotest.
run_rt() {
	name=$1 src=$WORK/src/$1 store=$WORK/rt/$1$SUFFIX
	shift
	rm -rf "$src" "$store" && cp -a "$REPO/testdata/crates/$name" "$src"
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

SUFFIX=
i=0
for name in $FIXTURES; do
	if [ $((i % 2)) = 0 ]; then
		run_rb "$name" 7; run_rb "$name" 0; run_rt "$name"
	else
		run_rt "$name"; run_rb "$name" 0; run_rb "$name" 7
	fi
	i=$((i + 1))
done

# NONDET_RUNS=N: N more rounds of all three on the nondeterministic fixture
# (its output is one of two at random, so a single round shows little).
k=1
while [ "$k" -le "${NONDET_RUNS:-0}" ]; do
	SUFFIX="#$k"
	run_rb nondeterministic 7; run_rb nondeterministic 0; run_rt nondeterministic
	k=$((k + 1))
done

# EXTRAS=1: reprotest again on the two fixtures it calls reproducible.
# exec_path: builds under user_group or domain_host run through sudo, whose
# secure_path resets PATH and so drops the exec_path variation's extra entry;
# without those two variations reprotest sees it. env: the fixture embeds
# BUILD_* variables only, and reprotest's environment variation adds
# REPROTEST_CAPTURE_ENVIRONMENT; told to add a BUILD_ variable, it sees it.
if [ "${EXTRAS:-0}" = 1 ]; then
	SUFFIX="+no-sudo-variations"
	run_rt exec_path --vary=-user_group,-domain_host
	SUFFIX="+BUILD_NOTE"
	run_rt env --vary=environment.variables+=BUILD_NOTE=rt-env
fi
