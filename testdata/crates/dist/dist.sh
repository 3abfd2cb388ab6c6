#!/bin/sh
# Pack the release binary the way many release scripts do: files copied into a
# staging directory and tarred with their modes, owners and mtimes from disk.
set -eu
cargo build --release --offline
rm -rf stage && mkdir -p stage
cp target/release/dist stage/dist
cp README stage/README
tar -cf - stage/dist stage/README | gzip -n > dist.tar.gz
