#!/bin/sh
# Builds buildkitd and buildctl VERSION from BuildKit's module source into
# DIR (make buildkitd calls this; sandbox/buildkit/bktest finds them there).
#
#   build-buildkitd.sh VERSION DIR
#
# `go install` refuses BuildKit (its go.mod has exclude directives), and the
# module proxy refuses four of its newest dependencies: the module's own
# source is copied to a temporary directory, pinned to versions the proxy
# serves (replace directives), and built there.
set -eu
version=$1
dir=$2
[ -x "$dir/buildkitd" ] && [ -x "$dir/buildctl" ] && exit 0
export GOFLAGS="-mod=mod -buildvcs=false"
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
src=$(cd "$tmp" && go mod download -json "github.com/moby/buildkit@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] || { echo "build-buildkitd: cannot download github.com/moby/buildkit@$version" >&2; exit 1; }
cp -r "$src" "$tmp/buildkit"
chmod -R u+w "$tmp/buildkit"
cat >>"$tmp/buildkit/go.mod" <<'PINS'

replace (
	github.com/moby/policy-helpers => github.com/moby/policy-helpers v0.0.0-20260901104222-dd6c5499c491
	github.com/moby/profiles/seccomp => github.com/moby/profiles/seccomp v0.2.3
	github.com/tonistiigi/fsutil => github.com/tonistiigi/fsutil v0.0.0-20260819142231-83cac42c1c52
	github.com/tonistiigi/go-actions-cache => github.com/tonistiigi/go-actions-cache v0.0.0-20260120203934-54bc28c26fd2
)
PINS
mkdir -p "$dir"
(cd "$tmp/buildkit" && go build -o "$tmp/bin/" ./cmd/buildkitd ./cmd/buildctl)
mv "$tmp/bin/buildctl" "$dir/buildctl"
mv "$tmp/bin/buildkitd" "$dir/buildkitd"
echo "built buildkitd and buildctl $version in $dir"
