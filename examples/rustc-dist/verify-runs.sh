#!/bin/bash
# verify-runs.sh: the recorded verify run of the rustc recipe. A "publisher"
# builds `x.py dist rust-src` with another configuration (1 CPU instead of 2,
# its own output directory) and publishes the tarball with a channel manifest;
# verify-release.sh then rebuilds rust-src from the same tree, verifies it
# against that manifest and signs the result (the provenance records the
# tree's src/stage0 by digest). Writes results/verify-rust-src/ (run.txt,
# stdout.txt, stderr.txt, the signed bundle, verify.json, the manifest).
#
#   verify-runs.sh SRC_DIR
#
# Environment: REPROBOX (default reprobox), OUT_ROOT (default /var/tmp/rustc-runs).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
REPROBOX=${REPROBOX:-reprobox}
OUT_ROOT=${OUT_ROOT:-/var/tmp/rustc-runs}
[ $# -eq 1 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
src=$(realpath "$1")
res=$here/results/verify-rust-src out=$OUT_ROOT/verify-rust-src
rm -rf "$res" "$out"
mkdir -p "$res" "$out/release"
start=$(date +%s)
{
	echo "publisher: ${REPROBOX##*/} build $src --cpus 1 --out $out/publisher -- python3 x.py dist rust-src"
	echo "verify:    verify-release.sh $src $out/release/channel-rust-1.85.0.toml rust-src -- --sign $out/rebuilder.key --out $out/verify"
	echo "start: $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "reprobox: $(git -C "$here" rev-parse --short HEAD 2>/dev/null)"
} >"$res/run.txt"
"$REPROBOX" build "$src" --cpus 1 --out "$out/publisher" -- python3 x.py dist rust-src \
	>"$res/publisher-stdout.txt" 2>"$res/publisher-stderr.txt"
echo "publisher exit: $?" >>"$res/run.txt"
tarball=$(cd "$out/publisher/artifacts/build/dist" && ls rust-src-*.tar.xz)
cp "$out/publisher/artifacts/build/dist/$tarball" "$out/release/"
sum=$(sha256sum "$out/release/$tarball" | cut -d' ' -f1)
cat >"$out/release/channel-rust-1.85.0.toml" <<EOT
manifest-version = "2"
date = "2025-02-20"

[pkg.rust-src]
version = "1.85.0"

[pkg.rust-src.target."*"]
available = true
xz_url = "https://static.rust-lang.org/dist/2025-02-20/$tarball"
xz_hash = "$sum"
EOT
cp "$out/release/channel-rust-1.85.0.toml" "$res/"
"$REPROBOX" key generate --out "$out/rebuilder" >/dev/null 2>&1
cp "$out/rebuilder.pub" "$res/"
REPROBOX=$REPROBOX "$here/verify-release.sh" "$src" "$out/release/channel-rust-1.85.0.toml" rust-src -- \
	--sign "$out/rebuilder.key" --out "$out/verify" >"$res/stdout.txt" 2>"$res/stderr.txt"
rc=$?
cp "$out/verify/verify.json" "$out/verify/verify.intoto.jsonl" "$res/" 2>/dev/null
end=$(date +%s)
{
	echo "verify exit: $rc"
	echo "end: $(date -u +%FT%TZ)  duration: $((end - start))s  load: $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$res/run.txt"
exit $rc
