#!/bin/bash
# Builds trainer out of tree in build/ (the program is build/bin/trainer).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] && [ Makefile -nt ../configure ] || ../configure -q
make -j"$(nproc)" >/dev/null
echo "build: $top/build/bin/trainer"
