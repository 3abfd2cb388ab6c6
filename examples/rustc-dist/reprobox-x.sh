#!/bin/sh
# reprobox-x.sh: run `python3 x.py ARGS…` inside a reprobox build, offline,
# with a stage0 compiler that does not hang under the build's frozen clock.
# prepare.sh copies it to the top of the rustc tree; reprobox.toml runs it:
#
#   command = ["sh", "reprobox-x.sh", "dist", "rust-std", "--stage", "0"]
#
# Why: reprobox freezes the wall clock with libfaketime (LD_PRELOAD). Upstream
# rustc binaries, such as the 1.84 stage0 that bootstraps 1.85, link jemalloc,
# and a jemalloc rustc started under libfaketime deadlocks in its first malloc:
# jemalloc's malloc_init_hard holds init_lock and calls clock_gettime;
# libfaketime's clock_gettime initializes lazily and calls dlsym("__ftime"),
# which fails and mallocs its error message; that malloc waits for init_lock
# forever (the process sleeps in futex_wait). reprobox's RUSTC_WRAPPER keeps
# the preload away from rustc when cargo compiles, but x.py also runs the
# stage0 rustc directly (build scripts run `$RUSTC --version` while x.py builds
# itself), and those processes hang.
#
# What it does: unpacks the stage0 tarballs that src/stage0 names (from
# stage0/DATE/, checked against src/stage0's sha256 sums) where bootstrap.py
# would, build/x86_64-unknown-linux-gnu/stage0, with the stamp bootstrap.py
# writes (.rustc-stamp, the stage0 date) so that it uses them as they are;
# replaces bin/rustc there by a two-line script that drops LD_PRELOAD and runs
# the real rustc (bin/rustc.real); then runs x.py with the tree's own
# config.toml. rustc embeds no time, so nothing of the clock normalization is
# lost: build scripts, cargo, python, tar and the linker still see the frozen
# clock. When the tree has no stage0 tarballs (config.toml names the image's
# own rustc, which does not link jemalloc), x.py runs unchanged.
#
# The config is left alone on purpose: every dist tarball carries the config
# file x.py read, as builder-config, so a config naming an absolute path
# inside the tree (a wrapped rustc under build/, say) makes every tarball
# depend on the build path.
set -eu
triple=x86_64-unknown-linux-gnu
date=$(sed -n 's/^compiler_date=//p' src/stage0)
ver=$(sed -n 's/^compiler_version=//p' src/stage0)
dir=stage0/$date
if [ ! -f "$dir/rustc-$ver-$triple.tar.xz" ]; then
	exec python3 x.py "$@"
fi
root=build/$triple/stage0
if [ "$(cat "$root/.rustc-stamp" 2>/dev/null)" != "$date" ] || [ ! -x "$root/bin/rustc.real" ]; then
	echo "reprobox-x.sh: unpacking the stage0 toolchain $ver ($date) into $root"
	rm -rf "$root"
	mkdir -p "$root"
	for c in rustc rust-std cargo; do
		f=$c-$ver-$triple.tar.xz
		want=$(sed -n "s|^dist/$date/$f=||p" src/stage0)
		got=$(sha256sum "$dir/$f" | cut -d' ' -f1)
		if [ -z "$want" ] || [ "$want" != "$got" ]; then
			echo "reprobox-x.sh: $dir/$f: sha256 $got, src/stage0 wants ${want:-nothing}" >&2
			exit 1
		fi
		# <name>/<component>/{bin,lib,…}: the layout bootstrap.py unpacks the same way.
		tar -xJf "$dir/$f" -C "$root" --strip-components=2 --exclude='*/manifest.in' \
			--wildcards "$c-$ver-$triple/$c*/*"
	done
	mv "$root/bin/rustc" "$root/bin/rustc.real"
	printf '#!/bin/sh\nunset LD_PRELOAD\nexec "$0.real" "$@"\n' >"$root/bin/rustc"
	chmod 755 "$root/bin/rustc"
	printf %s "$date" >"$root/.rustc-stamp"
fi
exec python3 x.py "$@"
