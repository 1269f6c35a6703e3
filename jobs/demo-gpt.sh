#!/bin/bash
# Fresh machine to a byte-level GPT on the King James Bible: install, build,
# prepare the text, train gpt-kjv (600 steps) with 2 MPI ranks, sample.
# STEPS=100 bash jobs/demo-gpt.sh for a short run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash jobs/install-deps.sh
bash jobs/build.sh
. jobs/env.sh
bash jobs/prepare-kjv.sh
mpirun -np 2 $MPI_FLAGS build/bin/trainer train --config jobs/gpt-kjv.conf --run-dir runs/gpt-demo \
    --steps "${STEPS:-600}"
build/bin/trainer sample --checkpoint runs/gpt-demo/checkpoint.h5 --prompt "And God said" \
    --length 300 --temperature 0.8 --top-k 40 --seed 1
