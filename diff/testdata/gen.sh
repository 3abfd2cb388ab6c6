#!/bin/sh
# gen.sh regenerates the fixtures of package diff. Run it from this directory:
#
#	cd diff/testdata && ./gen.sh
#
# It needs rustc (1.95 was used), python3, GNU gzip, xz, zstd and bzip2. The
# outputs are committed; tests do not run this script. Every input is fixed
# (paths through --remap-path-prefix, mtimes, owners), so reruns with the same
# tools give the same bytes.
set -eu
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=1700000000
here=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Two builds of a tiny crate that differ only in the build path, which leaks
# into DWARF, rlib metadata and panic locations. B's path is the "perturbed"
# build path of the label tests.
mkdir -p "$work/src" rust/a rust/b
cat > "$work/src/lib.rs" <<'RS'
pub fn greet(name: &str) -> String {
    format!("hello, {name} from {}", file!())
}

pub fn add(a: u64, b: u64) -> u64 {
    a.wrapping_mul(3) + b
}

#[inline(never)]
pub fn check(v: &[u8]) -> u8 {
    v[3]
}
RS
cat > "$work/src/main.rs" <<'RS'
fn main() {
    let v: Vec<u64> = std::env::args().map(|a| a.len() as u64).collect();
    println!("hi from {} {}", file!(), v.iter().sum::<u64>());
}
RS
build() { # side prefix
	( cd "$work" &&
	  rustc --edition 2021 --crate-type=rlib --crate-name=tiny -C debuginfo=2 -C opt-level=1 \
		--remap-path-prefix="$work=$2" src/lib.rs -o "$here/rust/$1/libtiny.rlib" &&
	  rustc --edition 2021 -C prefer-dynamic -C debuginfo=2 -C opt-level=1 \
		--remap-path-prefix="$work=$2" src/main.rs -o "$here/rust/$1/hello" )
}
build a /build/reprobox/src
build b /build/reprobox-variant/a/b/src

# A third build from changed code (add multiplies by 5), with v0 symbol
# mangling: the functions whose bytes differ, and every symbol's mangling.
mkdir -p rust/code
mkdir -p "$work/code/src"
sed 's/wrapping_mul(3)/wrapping_mul(5)/' "$work/src/lib.rs" > "$work/code/src/lib.rs"
( cd "$work/code" &&
  rustc --edition 2021 --crate-type=rlib --crate-name=tiny -C debuginfo=2 -C opt-level=1 \
	-C symbol-mangling-version=v0 \
	--remap-path-prefix="$work/code=/build/reprobox/src" src/lib.rs -o "$here/rust/code/libtiny.rlib" )

# Text: a changed line with a host name and a time in the shifted range.
mkdir -p text
cat > text/a.txt <<'T'
# build info
name = tiny
version = 0.1.0
host = builder
built = 2023-11-14T22:13:20Z
profile = release
features = default
target = x86_64-unknown-linux-gnu
T
cat > text/b.txt <<'T'
# build info
name = tiny
version = 0.1.0
host = reprobox-variant
built = 2030-03-17T17:46:40Z
profile = release
features = default,extra
target = x86_64-unknown-linux-gnu
T

# Archives: python writes tar and zip with per-member fields; the command-line
# tools compress.
mkdir -p archive
python3 - "$here" <<'PY'
import io, sys, tarfile, zipfile, os
here = sys.argv[1]
rlib = {s: open(f"{here}/rust/{s}/libtiny.rlib", "rb").read() for s in "ab"}
A_TIME, B_TIME = 1700000000, 1900000000  # B's is in the label tests' shifted range
def members(side):
    m = [
        # name, data (None: dir), mode, uid, gid, mtime
        ("pkg", None, 0o755, 0, 0, A_TIME),
        ("pkg/README", b"tiny: a crate for tests\n", 0o644, 0, 0, A_TIME),
        ("pkg/lib/libtiny.rlib", rlib[side], 0o644, 0, 0, A_TIME),
        ("pkg/bin/tool", b"#!/bin/sh\necho tool\n", 0o755 if side == "a" else 0o775, 0, 0, A_TIME),
        ("pkg/etc/tool.conf", b"level = 3\n", 0o644,
            0 if side == "a" else 1000, 0 if side == "a" else 1000, A_TIME if side == "a" else B_TIME),
        ("pkg/share/notes.txt", b"line one\nline two\nline three\n" if side == "a" else b"line one\nline 2\nline three\n", 0o644, 0, 0, A_TIME),
    ]
    m.append(("pkg/share/old.txt", b"only in a\n", 0o644, 0, 0, A_TIME) if side == "a"
             else ("pkg/share/new.txt", b"only in b\n", 0o644, 0, 0, A_TIME))
    return m
for side in "ab":
    with tarfile.open(f"{here}/archive/{side}.tar", "w", format=tarfile.GNU_FORMAT) as t:
        for name, data, mode, uid, gid, mtime in members(side):
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
            ti.uname = ti.gname = "root" if uid == 0 else "builder"
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    with zipfile.ZipFile(f"{here}/archive/{side}.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode, uid, gid, mtime in members(side):
            if data is None:
                continue
            import time
            zi = zipfile.ZipInfo(name, time.gmtime(mtime)[:6])
            zi.external_attr = (0o100000 | mode) << 16
            zi.create_system = 3
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
PY
for side in a b; do
	gzip -n -9 -c archive/$side.tar > archive/$side.tar.gz
	xz -6 -c archive/$side.tar > archive/$side.tar.xz
	zstd -q -19 -c archive/$side.tar > archive/$side.tar.zst
	bzip2 -9 -c archive/$side.tar > archive/$side.tar.bz2
done
# The same tar compressed twice, with different gzip header times: only the
# header differs.
python3 - "$here" <<'PY'
import gzip, sys
here = sys.argv[1]
data = open(f"{here}/archive/a.tar", "rb").read()
for side, t in (("a", 1700000000), ("b", 1900000000)):
    with open(f"{here}/archive/same-{side}.tar.gz", "wb") as f:
        with gzip.GzipFile(filename="same.tar", mode="wb", fileobj=f, mtime=t, compresslevel=9) as g:
            g.write(data)
PY
ls -l rust archive text
