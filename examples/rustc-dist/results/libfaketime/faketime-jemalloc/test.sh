set -u
tar -xJf rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz
r=$PWD/rustc-1.84.0-x86_64-unknown-linux-gnu/rustc/bin/rustc
echo "LD_PRELOAD=$LD_PRELOAD"
t() { label=$1; shift; s=$(date +%s); timeout -s KILL 20 "$@" >/dev/null 2>&1; rc=$?; echo "$label: exit $rc"; }
t "direct rustc --version (LD_PRELOAD as reprobox sets it)" "$r" --version
t "FAKETIME_SKIP_CMDS=rustc" env FAKETIME_SKIP_CMDS=rustc "$r" --version
t "LD_PRELOAD=libfaketime only" env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 "$r" --version
t "LD_PRELOAD=filetime shim only" env LD_PRELOAD=/.reprobox/lib/filetime.so "$r" --version
t "via RUSTC_WRAPPER" "$RUSTC_WRAPPER" "$r" --version
t "DONT_FAKE_MONOTONIC=0" env FAKETIME_DONT_FAKE_MONOTONIC=0 "$r" --version
mkdir -p out; { echo done; } > out/result.txt
