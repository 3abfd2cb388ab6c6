#!/bin/sh
# The release script: build, then pack the binary and the library's rlib into
# a tarball named like rustc's dist tarballs, with a channel manifest and
# SHA256SUMS beside it. Reproducible by construction: paths remapped, tar
# entries sorted with fixed owners, modes and times, gzip without a name or
# time.
set -eu
: "${SOURCE_DATE_EPOCH:=1700000000}"
RUSTFLAGS="--remap-path-prefix=$(pwd)=/hello" cargo build --release --offline
name=hello-0.1.0-x86_64-unknown-linux-gnu
rm -rf stage dist && mkdir -p "stage/$name/bin" "stage/$name/lib" dist
cp target/release/hello "stage/$name/bin/hello"
cp target/release/libgreet.rlib "stage/$name/lib/libgreet.rlib"
cp README "stage/$name/README"
tar -C stage --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --mode=u+rw,go+r,go-w -cf - "$name" | gzip -n -9 > "dist/$name.tar.gz"
sum=$(sha256sum "dist/$name.tar.gz" | cut -d' ' -f1)
(cd dist && sha256sum "$name.tar.gz" > SHA256SUMS)
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
cat > dist/channel-rust-hello.toml <<EOT
manifest-version = "2"
date = "$date"

[pkg.hello]
version = "0.1.0"

[pkg.hello.target.x86_64-unknown-linux-gnu]
available = true
url = "https://releases.example.invalid/dist/$date/$name.tar.gz"
hash = "$sum"
EOT
