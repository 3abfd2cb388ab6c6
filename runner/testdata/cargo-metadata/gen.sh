#!/bin/sh
# Remakes the cargo metadata fixtures: creates small cargo projects under a
# fixed directory (so the paths in the JSON stay the same) and records
# `cargo metadata --offline --no-deps --format-version 1` of each.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=/tmp/reprobox-metadata-fixtures
rm -rf "$root" && mkdir -p "$root" && cd "$root"
cargo new -q --vcs none hello-bin
cargo new -q --vcs none --lib just-lib
cargo new -q --vcs none multi
mkdir -p multi/src/bin && echo 'fn main() {}' > multi/src/bin/extra-tool.rs
mkdir ws && cd ws
cargo new -q --vcs none app
cargo new -q --vcs none --lib util
cargo new -q --vcs none --lib macros
printf '[workspace]\nmembers = ["app", "util", "macros"]\nresolver = "2"\n' > Cargo.toml
printf '\n[lib]\nproc-macro = true\n' >> macros/Cargo.toml
cd ..
cargo new -q --vcs none --lib cdy
printf '\n[lib]\ncrate-type = ["cdylib", "staticlib", "rlib"]\n' >> cdy/Cargo.toml
for p in hello-bin just-lib multi ws cdy; do
	(cd "$p" && cargo metadata --offline --no-deps --format-version 1) | python3 -m json.tool --sort-keys > "$here/$p.json"
done
