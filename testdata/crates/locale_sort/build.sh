#!/bin/sh
# Writes the list of modules in sorted order, as generated makefiles and
# manifests do with sort(1), which follows LC_COLLATE: byte order puts
# upper case first and t before z; most locales ignore case, and Estonian
# sorts z between s and t.
set -e
mkdir -p out
printf '%s\n' thread zlib socket Util alloc | sort > out/modules.txt
