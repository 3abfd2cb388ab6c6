set -u
tar -xJf rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz
r=$PWD/rustc-1.84.0-x86_64-unknown-linux-gnu/rustc/bin/rustc
echo "LD_PRELOAD=$LD_PRELOAD REPROBOX_CLOCK=$REPROBOX_CLOCK"
t() { label=$1; shift; timeout -s KILL 20 "$@" >/dev/null 2>&1; rc=$?; echo "$label: exit $rc"; }
t "upstream rustc 1.84 (jemalloc) --version under the time shim" "$r" --version
t "the same with libfaketime preloaded instead (for comparison)" env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME=$REPROBOX_CLOCK FAKETIME_FMT=%s "$r" --version
printf 'fn main() { println!("{:?}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()); }\n' > now.rs
t "the image's rustc compiles a program under the time shim" rustc -o now now.rs
echo "the program's clock: $(./now) (REPROBOX_CLOCK=$REPROBOX_CLOCK)"
mkdir -p out; { echo done; } > out/result.txt
