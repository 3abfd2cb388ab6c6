#!/bin/bash
# prepare.sh: make a rustc source tree a reprobox project whose build is
# `python3 x.py dist …`, offline, in the image of image.sh.
#
#   prepare.sh [options] SRC_DIR
#
# SRC_DIR is the tree reprobox builds from; keep it outside any repository (it
# is 1–2 GB; every build and check mounts a private overlay over a snapshot of
# it and never writes it). When SRC_DIR does not exist it is made:
#   (default)            from Debian's rustc-web source package (bookworm main),
#                        fetched with apt-get source through a private apt
#                        configuration (the host's apt sources are not touched)
#   --upstream TARBALL   from an upstream rustc-<ver>-src.tar.xz
# When it exists (from an earlier prepare.sh, `apt-get source`, or an unpacked
# upstream tarball) it is prepared in place, once; a second run only rewrites
# config.toml and reprobox.toml.
#
# Options:
#   --debian-version V   the rustc-web version to fetch (default 1.85.0+dfsg3-1~deb12u3)
#   --upstream TARBALL   see above
#   --stage0 DIR         upstream trees: a directory holding the stage0 tarballs
#                        src/stage0 names (rustc-, rust-std-, cargo-<ver>-<triple>.tar.xz);
#                        without it the image's /usr/bin/rustc and cargo bootstrap
#                        (Debian's rustc-web, which must be the previous or the same
#                        release as the tree)
#   --image REF          the image pinned in reprobox.toml (default: the local
#                        reprobox/rustc-dist, resolved to its digest)
#   --components "C…"    what x.py dist builds (default "rust-std rustc cargo")
#   --stage N            x.py --stage (default: x.py's, 2 for dist)
#   --no-remap-debuginfo leave build paths in debuginfo (rust.remap-debuginfo = false)
#   --compression P      dist.compression-profile: fast, balanced (default) or best
#   --timeout D          reprobox timeout of one build (default 4h)
#
# Environment: REPROBOX (default reprobox), REPROBOX_DATA_DIR.
#
# What it does to a Debian tree (the configure steps of its debian/rules):
#   copies extra/* into vendor/, unpacks debian/libgit2_*.orig.tar.xz into
#   vendor/libgit2-sys/libgit2 and applies use-vendored-libgit.patch, moves the
#   Cargo.lock files aside (Debian pruned crates, so they are re-resolved
#   offline against vendor/), prunes .cargo-checksum.json of patched crates,
#   links lzma-sys to the system liblzma, and deletes the stage0 tarballs of
#   other architectures (740 MB the build never reads).
# For every tree:
#   src/llvm-project: Debian ships no LLVM sources and `dist rust-src` refuses
#   an empty src/llvm-project; a README there says so (rust-src then lacks
#   src/llvm-project/libunwind, which only llvm-libunwind targets use).
#   config.toml (section 3 below); reprobox.toml, the project (section 4), whose
#   command is `python3 x.py dist COMPONENTS…`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
REPROBOX=${REPROBOX:-reprobox}
debian_version=1.85.0+dfsg3-1~deb12u3
upstream= stage0= image= components="rust-std rustc cargo" stage= remap=true
compression=balanced timeout=4h

die() { echo "prepare.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--debian-version) debian_version=$2; shift 2 ;;
	--upstream) upstream=$(realpath "$2"); shift 2 ;;
	--stage0) stage0=$(realpath "$2"); shift 2 ;;
	--image) image=$2; shift 2 ;;
	--components) components=$2; shift 2 ;;
	--stage) stage=$2; shift 2 ;;
	--no-remap-debuginfo) remap=false; shift ;;
	--compression) compression=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) [ -z "${src:-}" ] || die "one SRC_DIR only"; src=$1; shift ;;
	esac
done
[ -n "${src:-}" ] || die "usage: prepare.sh [options] SRC_DIR (see --help)"
triple=x86_64-unknown-linux-gnu
[ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported by this recipe"

log() { echo "prepare.sh: $*" >&2; }
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3

# --- 1. the source ----------------------------------------------------------
fetch_debian() {
	local dest=$1 work
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/rustc-debian-src.XXXXXX")
	mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
	cat >"$work/sources.list" <<-EOF
	deb-src http://deb.debian.org/debian bookworm main
	deb-src http://deb.debian.org/debian-security bookworm-security main
	EOF
	local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
	log "fetching rustc-web $debian_version (971 MB) with apt-get source"
	apt-get "${opts[@]}" -qq update
	(cd "$work" && apt-get "${opts[@]}" -q source --download-only "rustc-web=$debian_version")
	log "unpacking and patching (dpkg-source -x)"
	dpkg-source -x --no-check "$work"/rustc-web_*.dsc "$dest" >/dev/null
	rm -rf "$work"
}

if [ ! -e "$src" ]; then
	if [ -n "$upstream" ]; then
		log "unpacking $upstream into $src"
		mkdir -p "$src"
		tar -xf "$upstream" -C "$src" --strip-components=1
	else
		command -v dpkg-source >/dev/null || die "dpkg-source is missing: apt-get install dpkg-dev"
		fetch_debian "$src"
	fi
fi
src=$(realpath "$src")
[ -f "$src/x.py" ] && [ -f "$src/src/stage0" ] || die "$src is not a rustc source tree (no x.py, src/stage0)"
cd "$src"
flavor=upstream
[ -f debian/rules ] && flavor=debian
version=$(cut -d" " -f1 version 2>/dev/null || sed -n 's/^version = "\(.*\)"/\1/p' src/version)
stage0_date=$(sed -n 's/^compiler_date=//p' src/stage0)
stage0_version=$(sed -n 's/^compiler_version=//p' src/stage0)

# --- 2. one-time preparation --------------------------------------------------
if [ ! -e .reprobox-prepared ]; then
	if [ $flavor = debian ]; then
		log "Debian tree $version: the configure steps of debian/rules"
		if [ -d extra ]; then
			for c in extra/*; do
				c=${c#extra/}
				[ -e "vendor/$c" ] && mv "vendor/$c" "vendor/$c.backup"
				cp -r "extra/$c" vendor/
			done
		fi
		for t in debian/libgit2_*.orig.tar.xz; do
			[ -e "$t" ] || continue
			tar -xf "$t"
			mv libgit2-*/ vendor/libgit2-sys/libgit2
			patch -s -p1 <debian/patches/vendor/use-vendored-libgit.patch
		done
		! ls -d vendor/openssl-src-* >/dev/null 2>&1 || die "vendor/ holds openssl-src: not a Debian-pruned tree?"
		for ws in . src/bootstrap library src/tools/rust-analyzer src/tools/cargo src/tools/rustbook; do
			[ -f "$ws/Cargo.lock" ] && mv "$ws/Cargo.lock" "$ws/Cargo.lock.orig"
		done
		find vendor -name .cargo-checksum.json -execdir "$py" "$src/debian/prune-checksums" "{}" +
		for c in vendor/lzma-sys-*; do
			echo 'fn main() { println!("cargo:rustc-link-lib=lzma"); }' >"$c/build.rs"
		done
		# The stage0 tarball of the source package holds every architecture's.
		find stage0 -type f -name '*.tar.*' ! -name "*-$triple.tar.*" -delete
	fi
	if [ -n "$stage0" ]; then
		mkdir -p "stage0/$stage0_date"
		for c in rustc rust-std cargo; do
			f="$stage0/$c-$stage0_version-$triple.tar.xz"
			[ -f "$f" ] || die "--stage0: $f is missing (src/stage0 wants $stage0_version of $stage0_date)"
			cp "$f" "stage0/$stage0_date/"
		done
	fi
	if [ -z "$(ls -A src/llvm-project 2>/dev/null)" ]; then
		# dist rust-src also reads src/llvm-project/libunwind: an empty one.
		mkdir -p src/llvm-project/libunwind
		cat >src/llvm-project/README.reprobox <<-'EOF'
		This tree carries no LLVM sources (Debian removes them; rustc links the
		system LLVM 19 through llvm-config). x.py's `dist rust-src` refuses an empty
		src/llvm-project, and reads src/llvm-project/libunwind: this file and an
		empty libunwind/ satisfy it. rust-src therefore lacks the libunwind
		sources, which only targets built with llvm-libunwind use.
		EOF
	fi
	date -u +%Y-%m-%dT%H:%M:%SZ >.reprobox-prepared
fi

# --- 3. config.toml -------------------------------------------------------------
if [ -d "stage0/$stage0_date" ] && ls "stage0/$stage0_date/rustc-$stage0_version-$triple".tar.* >/dev/null 2>&1; then
	# bootstrap.py takes the stage0 tarballs from here, checking them against
	# src/stage0's sha256 sums, instead of downloading them.
	bootstrap_toolchain="bootstrap-cache-path = \"stage0\""
else
	log "no stage0 tarballs for $stage0_version: bootstrapping with the image's /usr/bin/rustc and cargo"
	bootstrap_toolchain=$'rustc = "/usr/bin/rustc"\ncargo = "/usr/bin/cargo"'
fi
locked=true
[ $flavor = debian ] && locked=false
# The newest entry of bootstrap's change tracker: x.py then prints no
# "changes since you last updated" notice.
change_id=$(sed -n 's/^ *change_id: \([0-9]*\),.*/\1/p' src/bootstrap/src/utils/change_tracker.rs | tail -1)
[ -n "$change_id" ] || change_id=$(sed -n 's/^change-id = \([0-9]*\).*/\1/p' config.example.toml | head -1)
if [ $flavor = debian ]; then
	sde=$(dpkg-parsechangelog -l debian/changelog -STimestamp)
else
	sde=$(date -u -d "$(sed -n 3p git-commit-info 2>/dev/null || echo 2023-11-14)" +%s)
fi
channel=stable
case $version in *beta*) channel=beta ;; *nightly*|*dev*) channel=nightly ;; esac

cat >config.toml <<EOF
# Written by reprobox examples/rustc-dist/prepare.sh for a $flavor tree of rustc $version.
# Mirrors Debian's debian/config.toml.in where it matters for a dist build
# (system LLVM 19, vendored crates, no network), with upstream's dist defaults
# for debuginfo.
change-id = $change_id

[build]
build = "$triple"
host = ["$triple"]
target = ["$triple"]
$bootstrap_toolchain
submodules = false
vendor = true
locked-deps = $locked
docs = false
extended = true
tools = ["cargo"]
profiler = true
optimized-compiler-builtins = false
verbose = 0

[llvm]
link-shared = true
download-ci-llvm = false

[target.$triple]
llvm-config = "/usr/lib/llvm-19/bin/llvm-config"
linker = "x86_64-linux-gnu-gcc"
profiler = "/usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.profile-x86_64.a"

[rust]
channel = "$channel"
download-rustc = false
jemalloc = false
lld = false
optimize = true
dist-src = false
debuginfo-level-std = 1
remap-debuginfo = $remap
deny-warnings = false

[dist]
compression-formats = ["xz"]
compression-profile = "$compression"
EOF

# --- 4. reprobox.toml -------------------------------------------------------------
if [ -z "$image" ]; then
	image=$("$REPROBOX" image ls 2>/dev/null | awk '$1 == "reprobox/rustc-dist" { print $1 "@" $2; exit }')
	[ -n "$image" ] || die "no local image reprobox/rustc-dist: run $here/image.sh first, or pass --image"
fi
# Before reprobox had its own time shim, the stage0 rustc (jemalloc) deadlocked
# under libfaketime and a wrapper script ran x.py; a tree prepared then has it.
rm -f reprobox-x.sh
cmd='"python3", "x.py", "dist"'
for c in $components; do cmd="$cmd, \"$c\""; done
[ -n "$stage" ] && cmd="$cmd, \"--stage\", \"$stage\""
cat >reprobox.toml <<EOF
# Written by reprobox examples/rustc-dist/prepare.sh.
image = "$image"
command = [$cmd]
artifacts = ["build/dist/*.tar.xz"]
source_date_epoch = $sde
cpus = 2
timeout = "$timeout"
# build/ of an earlier host build is not part of the source.
exclude = ["build", "reprobox-out", "target"]

[env]
# cargo links the system libssh2 (Debian's rules set it too).
LIBSSH2_SYS_USE_PKG_CONFIG = "1"
EOF
log "ready: $src"
log "  reprobox build $src --out OUT        (x.py dist $components${stage:+ --stage $stage})"
log "  reprobox check $src --repeats 1 --out OUT -- python3 x.py dist rust-src"
