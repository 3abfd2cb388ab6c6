#!/bin/sh
# Regenerates the published-release fixtures of this directory: three small
# "tarballs", a SHA256SUMS over them and the channel manifest's hashes.
set -eu
cd "$(dirname "$0")"
mkdir -p release
printf 'rust-src gz\n' > release/rust-src-1.85.0.tar.gz
printf 'rust-src xz\n' > release/rust-src-1.85.0.tar.xz
printf 'rust-std xz\n' > release/rust-std-1.85.0-x86_64-unknown-linux-gnu.tar.xz
(cd release && sha256sum rust-src-1.85.0.tar.gz && sha256sum -b rust-src-1.85.0.tar.xz rust-std-1.85.0-x86_64-unknown-linux-gnu.tar.xz) > release/SHA256SUMS
gz=$(sha256sum release/rust-src-1.85.0.tar.gz | cut -d' ' -f1)
xz=$(sha256sum release/rust-src-1.85.0.tar.xz | cut -d' ' -f1)
std=$(sha256sum release/rust-std-1.85.0-x86_64-unknown-linux-gnu.tar.xz | cut -d' ' -f1)
sed -e "s/GZHASH/$gz/" -e "s/\"XZHASH\"/\"$xz\"/" -e "s/STDHASH/$std/" channel-rust-1.85.0.toml > release/channel-rust-1.85.0.toml
