#!/bin/sh
# gencrate.sh DIR [N]: writes a self-contained Rust crate (a library and a
# binary, no dependencies) with N generated functions and types (default 120)
# into DIR.
set -eu
dir=$1
n=${2:-120}
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<'T'
[package]
name = "benchcrate"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["rlib"]

[[bin]]
name = "benchcrate"
path = "src/main.rs"

[profile.release]
debug = 2
T
{
	echo 'use std::collections::HashMap;'
	echo 'use std::fmt::Write;'
	i=0
	while [ $i -lt "$n" ]; do
		cat <<R
/// Generated function $i.
#[inline(never)]
pub fn f$i(input: &str, n: u64) -> String {
    let mut m: HashMap<String, u64> = HashMap::new();
    for (k, w) in input.split_whitespace().enumerate() {
        *m.entry(w.to_string()).or_default() += (k as u64).wrapping_mul($i + n);
    }
    let mut out = String::new();
    let mut keys: Vec<_> = m.iter().collect();
    keys.sort();
    for (k, v) in keys {
        write!(out, "{k}={v};").unwrap();
    }
    if out.len() > 10_000 { panic!("f$i: output too long at {}:{}", file!(), line!()); }
    out
}
pub struct S$i { pub a: u64, pub b: String, pub c: Vec<u32> }
impl S$i {
    pub fn new(a: u64) -> Self { S$i { a, b: format!("s$i-{a}"), c: (0..(a % 7) as u32).collect() } }
    pub fn total(&self) -> u64 { self.a + self.c.iter().map(|x| *x as u64).sum::<u64>() + self.b.len() as u64 }
}
R
		i=$((i+1))
	done
	echo 'pub fn all(input: &str) -> usize {'
	echo '    let mut n = 0;'
	i=0
	while [ $i -lt "$n" ]; do
		echo "    n += f$i(input, $i).len() + S$i::new($i).total() as usize;"
		i=$((i+1))
	done
	echo '    n'
	echo '}'
} > "$dir/src/lib.rs"
cat > "$dir/src/main.rs" <<'T'
fn main() {
    let input: String = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    println!("{}", benchcrate::all(&input));
}
T
