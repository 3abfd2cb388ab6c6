#!/bin/sh
# image.sh: build the image rustc's `x.py dist` runs in, from Debian bookworm
# packages (the Build-Depends of Debian's rustc-web 1.85 that an x86_64 dist
# of rust-src, rust-std, rustc and cargo uses; no network in the build).
#
#   examples/rustc-dist/image.sh            # prints reprobox/rustc-dist@sha256:… last
#
# REPROBOX names the binary (default: reprobox on PATH); --data-dir and the
# other global flags can follow as arguments.
#
# The image is reproducible: the same archive contents give the same digest.
# It is the default image (rustc-web, cargo-web, gcc, libc6-dev, tzdata,
# locales) plus:
#   python3                         x.py
#   g++ make                        rustc_llvm's C++ wrapper, cc-rs builds
#   cmake ninja-build               bootstrap's sanity check wants cmake
#   llvm-19-dev llvm-19-tools       the LLVM rustc links (link-shared) via llvm-config
#   libclang-rt-19-dev              libclang_rt.profile for profiler_builtins
#   pkgconf zlib1g-dev liblzma-dev  system zlib and liblzma (lzma-sys is relinked)
#   libssl-dev libcurl4-openssl-dev libssh2-1-dev libsqlite3-dev
#   libhttp-parser-dev libpcre3-dev cargo's system libraries (Debian unbundles them)
#   xz-utils git procps file        tools bootstrap and the checks call
set -eu
REPROBOX=${REPROBOX:-reprobox}
exec "$REPROBOX" "$@" image build --name reprobox/rustc-dist \
	--package python3 \
	--package g++ --package make \
	--package cmake --package ninja-build \
	--package llvm-19-dev --package llvm-19-tools --package libclang-rt-19-dev \
	--package pkgconf --package zlib1g-dev --package liblzma-dev \
	--package libssl-dev --package libcurl4-openssl-dev --package libssh2-1-dev \
	--package libsqlite3-dev --package libhttp-parser-dev --package libpcre3-dev \
	--package xz-utils --package git --package procps --package file
