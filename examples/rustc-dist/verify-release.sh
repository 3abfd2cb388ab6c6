#!/bin/sh
# verify-release.sh: rebuild components of a rustc release from its source tree
# and verify them against the release's channel manifest and tarballs.
#
#   verify-release.sh TREE MANIFEST [COMPONENT...] [-- VERIFY-FLAGS...]
#
# TREE       a rustc source tree prepared by prepare.sh (its reprobox.toml pins
#            the image; its src/stage0 pins the previous release that builds
#            this one, recorded by digest in the provenance that --sign writes)
# MANIFEST   the release's channel-rust-*.toml; the tarballs beside it are
#            diffed when they do not match (without them only digests are
#            compared); a SHA256SUMS file works too
# COMPONENT  x.py dist components to rebuild and verify (default: rust-src);
#            only the manifest's tarballs of these components are compared,
#            the rest of the release is ignored, not MISSING
# VERIFY-FLAGS go to reprobox verify: --sign KEY, --attestation FILE, --out
#            DIR, --repeats N, --data-dir DIR, --image REF…
#
# Environment: REPROBOX (default reprobox); STAGE, the x.py --stage (e.g. 0 for
# `dist rust-std --stage 0`; default x.py's).
#
# Examples:
#   verify-release.sh /var/tmp/rustc-1.85 release/channel-rust-1.85.0.toml rust-src
#   STAGE=0 verify-release.sh /var/tmp/rustc-1.85 release/channel-rust-1.85.0.toml \
#       rust-src rust-std -- --sign rebuilder.key --out /var/tmp/verify
set -eu
REPROBOX=${REPROBOX:-reprobox}
[ $# -ge 2 ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
tree=$1 manifest=$2
shift 2
components=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do components="$components $1"; shift; done
[ $# -gt 0 ] && shift # the --
[ -n "$components" ] || components=rust-src
[ -f "$tree/x.py" ] || { echo "verify-release.sh: $tree is not a rustc source tree (no x.py)" >&2; exit 2; }
[ -f "$tree/src/stage0" ] || [ -f "$tree/src/stage0.json" ] ||
	echo "verify-release.sh: warning: $tree has no src/stage0: the provenance cannot record the stage0" >&2

only= cmd="python3 x.py dist"
for c in $components; do
	only="$only --only $c-*"
	cmd="$cmd $c"
done
[ -n "${STAGE:-}" ] && cmd="$cmd --stage $STAGE"
# shellcheck disable=SC2086 # $only and $cmd are word lists on purpose
exec "$REPROBOX" verify "$tree" --published "$manifest" --artifact 'build/dist/*.tar.xz' $only "$@" -- $cmd
