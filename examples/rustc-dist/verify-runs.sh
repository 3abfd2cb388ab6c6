#!/bin/bash
# verify-runs.sh: the recorded verify runs of the rustc recipe.
#
#   verify-runs.sh TREE ROOTFS DATA_DIR_A DATA_DIR_B
#
# 1. publisher: publish-chroot.sh builds `x.py dist rust-src rust-std --stage 0`
#    OUTSIDE reprobox, by plain x.py in a chroot of ROOTFS (the image's
#    root filesystem) as another user, in another build path, locale, time
#    zone, umask, hostname, CPU count and with the real clock, and publishes
#    the two tarballs with a channel manifest.
# 2. rebuilder A (DATA_DIR_A, key A) and rebuilder B (DATA_DIR_B, its own
#    copy of the image, key B) each run verify-release.sh: a reprobox rebuild
#    of the same components, verified against the manifest and signed.
# 3. threshold: reprobox verify --attestations (both bundles) --trusted-keys
#    (both keys) --threshold 2 passes; with A's bundle twice and none of B it fails.
# 4. tampered: tamper.py inverts one byte of one function of libcore's rlib
#    inside the rust-std tarball and updates the manifest; rebuilder A
#    verifies that release: it must fail naming the tarball member, the rlib
#    member and the symbol.
# Writes results/verify/ (run.txt and what each step printed, the manifests,
# the keys, the bundles, the reports).
#
# Environment: REPROBOX (default reprobox), OUT_ROOT (default /var/tmp/rustc-verify),
# STEPS (default "publish a b threshold tamper"; a step whose output exists is
# kept, so the runs can be made one at a time).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
REPROBOX=${REPROBOX:-reprobox}
OUT_ROOT=${OUT_ROOT:-/var/tmp/rustc-verify}
STEPS=${STEPS:-publish a b threshold tamper}
[ $# -eq 4 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
tree=$(realpath "$1") rootfs=$(realpath "$2") dda=$(realpath "$3") ddb=$(realpath "$4")
res=$here/results/verify out=$OUT_ROOT
mkdir -p "$res" "$out"
version=$(cut -d' ' -f1 "$tree/version")
manifest=channel-rust-$version.toml
log() { echo "$*" | tee -a "$res/run.txt"; }
step() {
	local name=$1
	shift
	local t0 rc
	t0=$(date +%s)
	log "== $name: $*"
	log "   start $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$@" >"$res/$name.stdout.txt" 2>"$res/$name.stderr.txt"
	rc=$?
	log "   exit $rc after $(($(date +%s) - t0)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	return $rc
}
log "reprobox $(git -C "$here" rev-parse --short HEAD 2>/dev/null), tree $tree ($version), $(date -u +%FT%TZ)"

for s in $STEPS; do
	case $s in
	publish)
		[ -e "$out/pub/release/$manifest" ] && { log "== publish: kept $out/pub/release"; continue; }
		rm -rf "$out/pub"
		step publish "$here/publish-chroot.sh" "$rootfs" "$tree" "$out/pub" rust-src rust-std -- --stage 0
		cp "$out/pub/release/$manifest" "$res/published-$manifest"
		;;
	a | b)
		dd=$dda
		[ $s = b ] && dd=$ddb
		[ -e "$out/$s.key" ] || "$REPROBOX" key generate --out "$out/$s" >/dev/null
		cp "$out/$s.pub" "$res/rebuilder-$s.pub"
		rm -rf "$out/verify-$s"
		STAGE=0 REPROBOX=$REPROBOX step "rebuilder-$s" "$here/verify-release.sh" "$tree" "$out/pub/release/$manifest" rust-src rust-std -- \
			--data-dir "$dd" --sign "$out/$s.key" --out "$out/verify-$s" --json "$out/verify-$s.json"
		cp "$out/verify-$s.json" "$res/rebuilder-$s.json" 2>/dev/null
		cp "$out/verify-$s/verify.intoto.jsonl" "$res/rebuilder-$s.intoto.jsonl" 2>/dev/null
		;;
	threshold)
		rm -rf "$out/attestations"
		mkdir -p "$out/attestations"
		cp "$out/verify-a/verify.intoto.jsonl" "$out/attestations/a.intoto.jsonl"
		cp "$out/verify-b/verify.intoto.jsonl" "$out/attestations/b.intoto.jsonl"
		cat "$out/a.pub" "$out/b.pub" >"$out/trusted.pem"
		step threshold "$REPROBOX" verify --published "$out/pub/release/$manifest" --only 'rust-src-*' --only 'rust-std-*' \
			--attestations "$out/attestations" --trusted-keys "$out/trusted.pem" --threshold 2
		# The same with rebuilder A's bundle twice (another file name) and no
		# bundle of B: one builder is not two.
		rm -rf "$out/attestations-a"
		mkdir -p "$out/attestations-a"
		cp "$out/verify-a/verify.intoto.jsonl" "$out/attestations-a/a.intoto.jsonl"
		cp "$out/verify-a/verify.intoto.jsonl" "$out/attestations-a/a-again.intoto.jsonl"
		step threshold-a-twice "$REPROBOX" verify --published "$out/pub/release/$manifest" --only 'rust-src-*' --only 'rust-std-*' \
			--attestations "$out/attestations-a" --trusted-keys "$out/trusted.pem" --threshold 2
		;;
	tamper)
		rm -rf "$out/tampered" "$out/verify-tampered"
		python3 "$here/tamper.py" "$out/pub/release" "$out/tampered" rust-std libcore- fmt9Formatter3pad | tee -a "$res/run.txt"
		cp "$out/tampered/$manifest" "$res/tampered-$manifest"
		STAGE=0 REPROBOX=$REPROBOX step tampered "$here/verify-release.sh" "$tree" "$out/tampered/$manifest" rust-src rust-std -- \
			--data-dir "$dda" --out "$out/verify-tampered" --json "$out/verify-tampered.json"
		cp "$out/verify-tampered.json" "$res/tampered.json" 2>/dev/null
		;;
	*) echo "verify-runs.sh: unknown step $s" >&2; exit 2 ;;
	esac
done
log "end $(date -u +%FT%TZ)"
