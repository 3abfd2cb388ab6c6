#!/bin/sh
# The build driver: runs a configure step, then compiles the program.
set -e
mkdir -p out
sh ./configure
