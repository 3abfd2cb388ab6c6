#!/bin/sh
# Generates a header of keyword constants, upper-casing each keyword with the
# shell's case conversion (bash ${w^^}), which follows LC_CTYPE: in a Turkish
# locale "print" becomes "PRİNT".
set -e
mkdir -p out
bash -c 'for w in if int print while; do echo "#define KW_${w^^} \"$w\""; done' > out/keywords.h
