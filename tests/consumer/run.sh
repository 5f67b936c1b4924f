#!/usr/bin/env bash
# Install rcgc into a temporary prefix from the build tree, then build a
# consumer with pkg-config and with CMake's find_package, and run both.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
libdir=$(ls -d "$work"/prefix/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH=$libdir
# 1. pkg-config, static link
flags=$(pkg-config --cflags --libs --static rcgc)
echo "pkg-config: $flags"
cc -std=c11 "$src/project/main.c" -o "$work/pc-consumer" $(pkg-config --cflags rcgc) \
   "${libdir%/pkgconfig}/librcgc.a" -lpthread
out=$("$work/pc-consumer")
[ "$out" = "refcount=2 len=1" ] || { echo "pkg-config consumer printed: $out"; exit 1; }
# and shared, through pkg-config's -L/-l
cc -std=c11 "$src/project/main.c" -o "$work/pc-shared" $flags
out=$(LD_LIBRARY_PATH="${libdir%/pkgconfig}" "$work/pc-shared")
[ "$out" = "refcount=2 len=1" ] || { echo "shared consumer printed: $out"; exit 1; }
# 2. find_package
cmake -S "$src/project" -B "$work/cm" -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/cm.log"
cmake --build "$work/cm" > "$work/cm-build.log"
out=$("$work/cm/consumer")
[ "$out" = "refcount=2 len=1" ] || { echo "find_package consumer printed: $out"; exit 1; }
echo "consumer: pkg-config (static, shared) and find_package(rcgc) all work"
