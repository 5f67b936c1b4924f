#!/usr/bin/env bash
# Install the Debian packages rcgc's build, tests and benchmarks need, when
# they are missing.  Idempotent and quick when everything is there.
set -euo pipefail

packages=(
  cmake pkg-config
  libcmocka-dev                      # unit-test framework
  python3                            # differential twin (CPython's own gc)
  python3.11-dev                     # pymalloc peer (PyObject_Malloc)
  libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libgc-dev  # peers
  libunwind-dev libdw-dev libzstd-dev  # native stacks, symbols, captures
  valgrind heaptrack                 # ms_print, heaptrack peers
  clang                              # libFuzzer (tests/tracemalloc fuzz target)
  chromium                           # rcgc-prof's HTML report test
  gnuplot-nox                        # not required; used when present
  sqlite3                            # a real program rcgc-prof is checked on
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
