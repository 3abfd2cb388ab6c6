#!/bin/sh
# Compiles and runs a generator that prints a float with printf(3) after
# setlocale(LC_ALL, ""), as many C programs do: LC_NUMERIC decides the decimal
# point ("0.75" or "0,75").
set -e
mkdir -p out
cat > gen.c <<'C'
#include <locale.h>
#include <stdio.h>
int main(void) {
	setlocale(LC_ALL, "");
	printf("#define LOAD_FACTOR \"%.2f\"\n", 0.75);
	return 0;
}
C
cc -O2 -o gen gen.c
./gen > out/config.h
