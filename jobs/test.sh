#!/bin/bash
# Fresh machine to passing tests: install, build, run every suite (make
# check), then the same suites in a tree built with AddressSanitizer and
# UndefinedBehaviorSanitizer, ThreadSanitizer on the lane threads, and a
# short run of every fuzz target. Each step prints its summary lines.
#   QUICK=1 bash jobs/test.sh    only the normal build's make check
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/jobs/install-deps.sh"
bash "$top/jobs/build.sh"
cd "$top/build"
make check
[ -n "${QUICK:-}" ] && exit 0
# a sanitizer tree: configured once, rebuilt when sources change
sanitized() { # DIR CONFIGURE-ARGS...
    local dir=$1
    shift
    mkdir -p "$top/$dir"
    cd "$top/$dir"
    [ -f Makefile ] && [ Makefile -nt ../configure ] || ../configure -q "$@"
    make -j"$(nproc)" >/dev/null
}
echo "== ASan + UBSan: make check in build-asan/"
sanitized build-asan --enable-sanitizers
make check
echo "== ThreadSanitizer: tests/tsan.sh in build-tsan/"
sanitized build-tsan --enable-sanitizers=thread
make check TESTS=tests/tsan.sh
echo "== libFuzzer: a short run of every target"
bash "$top/tests/fuzz.sh"
