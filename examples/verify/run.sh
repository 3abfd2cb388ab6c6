#!/bin/sh
# The recorded runs of examples/verify/README.md, end to end:
#   1. a "publisher" builds the hello release in a different environment
#      (reprobox check's variant build: every factor perturbed: build path,
#      user, home, time, locale, time zone, umask, host name, CPU count, file
#      order, kernel, ASLR, environment) and publishes tarball, SHA256SUMS and
#      channel manifest;
#   2. rebuilder 1 verifies the release against its channel manifest and signs;
#   3. rebuilder 2, with its own data directory and key, verifies it against
#      SHA256SUMS and signs;
#   4. a tampered release (one byte changed inside the rlib inside the tarball,
#      manifests re-signed to match) fails verification, naming the tarball
#      member, the rlib member and the section;
#   5. the two rebuilders' attestations together pass --threshold 2.
#
# usage: run.sh WORKDIR [IMAGE]   (REPROBOX names the binary; as root)
set -u
R=${REPROBOX:-reprobox}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$1
IMG=${2:-reprobox/rust}
DD=${REPROBOX_DATA_DIR:-/var/lib/reprobox}
mkdir -p "$W" && cd "$W" || exit 2
rm -rf hello publisher release tampered attestations verify1 verify2 verify3 rebuilder1.* rebuilder2.* trusted.pem
cp -r "$HERE/hello" hello
step() { printf '\n$ %s\n' "$*"; "$@"; printf '[exit %s]\n' "$?"; }

step $R check hello --image "$IMG" --vary all --repeats 0 --artifact 'dist/*' --out publisher
cp -r publisher/variant/dist release
step $R key generate --out rebuilder1
step $R key generate --out rebuilder2
step $R verify hello --image "$IMG" --published release/channel-rust-hello.toml \
    --sign rebuilder1.key --attestation attestations/rebuilder1.intoto.jsonl --out verify1
if [ ! -e dd2/oci/index.json ]; then
    step $R image import "$DD/oci" --data-dir "$PWD/dd2"
fi
step $R verify hello --data-dir "$PWD/dd2" --image "$IMG" --published release/SHA256SUMS \
    --sign rebuilder2.key --attestation attestations/rebuilder2.intoto.jsonl --out verify2
step python3 "$HERE/tamper.py" release tampered "verified release" "verifiEd release"
step $R verify hello --image "$IMG" --published tampered/channel-rust-hello.toml --out verify3
cat rebuilder1.pub rebuilder2.pub > trusted.pem
step $R verify --attestations attestations --trusted-keys trusted.pem --threshold 2 \
    --published release/channel-rust-hello.toml
step $R verify --attestations attestations --trusted-keys rebuilder1.pub --threshold 1 \
    --published tampered/channel-rust-hello.toml
