#!/bin/bash
# publish-chroot.sh: a "publisher" build of rustc components made OUTSIDE
# reprobox, by plain x.py in a chroot of the same image, with another
# environment than reprobox's normalized one: another build user (uid 2000,
# "publisher"), build path (/home/publisher/work/rustc-1.85.0), locale
# (fr_FR.UTF-8 in LANG and LC_ALL, when the image has it, else C with LC_ALL
# unset), time zone (America/New_York), umask (0002), hostname, CPU count (1)
# and the real, running clock (no time shim). SOURCE_DATE_EPOCH is the one of
# the tree's reprobox.toml: it is an input of the release, which a publisher
# sets too. Then it publishes the tarballs with a Rust channel manifest.
#
#   publish-chroot.sh ROOTFS TREE OUT COMPONENT... [-- X.PY-ARGS...]
#
# ROOTFS  the image's unpacked root filesystem (never written: an overlay is
#         mounted over it); e.g. DATA_DIR/rootfs/<digest>
# TREE    the prepared rustc source tree (copied, never written)
# OUT     a new directory: root/, the overlay, src/, the copy, release/, the
#         tarballs and channel-rust-VERSION.toml, build.log
# X.PY-ARGS extra x.py arguments, e.g. --stage 0
#
# Needs root (mount namespaces, overlayfs, chroot). Nothing of the host but /dev
# is visible in the chroot; the network namespace is empty.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
rootfs=$(realpath "$1") tree=$(realpath "$2") out=$3
shift 3
components=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do components+=("$1"); shift; done
[ $# -gt 0 ] && shift
xargs_=("$@")
[ -x "$rootfs/usr/bin/python3" ] || { echo "publish-chroot.sh: $rootfs has no python3: not the rustc-dist image's rootfs" >&2; exit 2; }
[ -f "$tree/x.py" ] || { echo "publish-chroot.sh: $tree is not a rustc source tree" >&2; exit 2; }
[ ! -e "$out" ] || { echo "publish-chroot.sh: $out exists; give a new directory" >&2; exit 2; }
mkdir -p "$out"/{upper,work,root,release}
out=$(realpath "$out")
epoch=$(sed -n 's/^source_date_epoch *= *\([0-9]*\).*/\1/p' "$tree/reprobox.toml")
[ -n "$epoch" ] || { echo "publish-chroot.sh: no source_date_epoch in $tree/reprobox.toml" >&2; exit 2; }
version=$(cut -d' ' -f1 "$tree/version")
where=/home/publisher/work/rustc-$version

echo "publish-chroot.sh: copying $tree to $out/src" >&2
cp -a "$tree" "$out/src"
rm -rf "$out/src/build" "$out/src/reprobox-out"
chown -R 2000:2000 "$out/src"

locale=C
grep -qas 'fr_FR.utf8' "$rootfs/usr/lib/locale/locale-archive" && locale=fr_FR.UTF-8
localeenv=(LANG=$locale)
[ $locale != C ] && localeenv+=(LC_ALL=$locale)

cmd="python3 x.py dist ${components[*]} ${xargs_[*]}"
echo "publish-chroot.sh: $cmd as uid 2000 in $where, ${localeenv[*]}, TZ=America/New_York, umask 0002, 1 CPU, real clock" >&2
# One mount namespace (everything below is gone when it ends), its own PID,
# UTS, IPC and an empty network namespace.
CMD=$cmd unshare --mount --uts --ipc --net --pid --fork --kill-child bash -euo pipefail -c '
	rootfs=$1 out=$2 where=$3
	shift 3
	mount --make-rprivate /
	mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$out/upper,workdir=$out/work" "$out/root"
	r=$out/root
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
	mkdir -p "$r$where" "$r/home/publisher"
	chown 2000:2000 "$r/home/publisher"
	mount --bind "$out/src" "$r$where"
	grep -q "^publisher:" "$r/etc/passwd" || echo "publisher:x:2000:2000::/home/publisher:/bin/sh" >> "$r/etc/passwd"
	grep -q "^publisher:" "$r/etc/group" || echo "publisher:x:2000:" >> "$r/etc/group"
	hostname publisher-host
	exec taskset -c 0 chroot --userspec=2000:2000 "$r" env -i "$@" sh -c "umask 0002; cd $where && exec $CMD"
' publish "$rootfs" "$out" "$where" \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/publisher USER=publisher \
	"${localeenv[@]}" TZ=America/New_York SOURCE_DATE_EPOCH="$epoch" \
	>"$out/build.log" 2>&1 <<<"" || { echo "publish-chroot.sh: the build failed; see $out/build.log" >&2; exit 1; }

# Publish: the tarballs of the components and a channel manifest naming them
# with their hashes, as static.rust-lang.org does.
triple=x86_64-unknown-linux-gnu
manifest=$out/release/channel-rust-$version.toml
{
	echo 'manifest-version = "2"'
	echo "date = \"$(date -u -d "@$epoch" +%F)\""
} >"$manifest"
for c in "${components[@]}"; do
	found=
	for f in "$out/src/build/dist/$c-$version-$triple.tar.xz" "$out/src/build/dist/$c-$version.tar.xz"; do
		[ -f "$f" ] || continue
		found=$f
		break
	done
	[ -n "$found" ] || { echo "publish-chroot.sh: x.py made no tarball for $c" >&2; exit 1; }
	name=${found##*/}
	target='"*"'
	case $name in *-$triple.tar.xz) target=$triple ;; esac
	cp "$found" "$out/release/"
	{
		echo
		echo "[pkg.$c]"
		echo "version = \"$version\""
		echo
		echo "[pkg.$c.target.$target]"
		echo "available = true"
		echo "xz_url = \"https://static.rust-lang.org/dist/$(date -u -d "@$epoch" +%F)/$name\""
		echo "xz_hash = \"$(sha256sum "$found" | cut -d' ' -f1)\""
	} >>"$manifest"
done
echo "$manifest"
