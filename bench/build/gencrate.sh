#!/bin/sh
# Generates a self-contained crate (no dependencies) that takes tens of seconds
# to build in release mode: many modules of generic code and trait impls.
set -eu
dir=${1:?usage: gencrate.sh DIR [MODULES]}
n=${2:-60}
rm -rf "$dir"; mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<'T'
[package]
name = "benchcrate"
version = "0.1.0"
edition = "2021"

[profile.release]
codegen-units = 16
T
: > "$dir/src/main.rs"
i=0
while [ $i -lt $n ]; do
  echo "mod m$i;" >> "$dir/src/main.rs"
  cat > "$dir/src/m$i.rs" <<T
use std::collections::BTreeMap;
pub trait Shape$i { fn area(&self) -> f64; fn name(&self) -> String; }
#[derive(Debug, Clone, PartialEq)]
pub struct Rect$i<T> { pub w: T, pub h: T, pub tags: Vec<String> }
impl<T: Into<f64> + Copy + std::fmt::Debug> Shape$i for Rect$i<T> {
    fn area(&self) -> f64 { self.w.into() * self.h.into() }
    fn name(&self) -> String { format!("rect{}-{:?}-{:?}", $i, self.w, self.tags) }
}
pub fn work<T: Shape$i>(items: &[T]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (k, it) in items.iter().enumerate() {
        *m.entry(format!("{}-{}", it.name(), k % 7)).or_insert(0.0) += it.area();
    }
    m
}
pub fn run() -> usize {
    let a: Vec<Rect$i<u32>> = (0..50u32).map(|i| Rect$i { w: i, h: i + $i, tags: vec![i.to_string()] }).collect();
    let b: Vec<Rect$i<f32>> = (0..50).map(|i| Rect$i { w: i as f32, h: 1.5, tags: vec![] }).collect();
    let c: Vec<Rect$i<u8>> = (0..50u8).map(|i| Rect$i { w: i, h: 2, tags: vec!["x".into(); 3] }).collect();
    work(&a).len() + work(&b).len() + work(&c).len()
}
T
  i=$((i+1))
done
{
  echo 'fn main() {'
  echo '    let mut total = 0;'
  i=0; while [ $i -lt $n ]; do echo "    total += m$i::run();"; i=$((i+1)); done
  echo '    println!("{total}");'
  echo '}'
} >> "$dir/src/main.rs"
cat > "$dir/reprobox.toml" <<'T'
command = ["cargo", "build", "--release", "--offline"]
artifacts = ["target/release/benchcrate"]
source_date_epoch = 1700000000
T
