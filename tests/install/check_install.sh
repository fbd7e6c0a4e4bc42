#!/usr/bin/env bash
# check_install.sh BUILD_DIR THIS_DIR CC - installs BUILD_DIR into a scratch prefix and builds two
# consumers against it: a C11 program through pkg-config, and a C++ CMake project through find_package.
set -euo pipefail
build_dir=$1 here=$2 cc=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
pc_dir=$(dirname "$(find "$prefix" -name umn.pc | head -n 1)")
lib_dir=$(dirname "$pc_dir")
export PKG_CONFIG_PATH=$pc_dir LD_LIBRARY_PATH=$lib_dir

echo "--- C program through pkg-config: $(pkg-config --cflags --libs umn)"
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$here/consumer/consumer.c" $(pkg-config --cflags --libs umn) \
  -o "$scratch/c_consumer"
"$scratch/c_consumer"

echo "--- C++ project through find_package(umn)"
cmake -S "$here/consumer" -B "$scratch/cmake_consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cmake_consumer" >/dev/null
"$scratch/cmake_consumer/cxx_consumer"
echo "install checks passed"
