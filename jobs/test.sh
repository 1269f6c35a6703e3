#!/bin/bash
# Fresh machine to passing tests: install, build, run every suite.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/jobs/install-deps.sh"
bash "$top/jobs/build.sh"
cd "$top/build"
make check
