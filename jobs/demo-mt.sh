#!/bin/bash
# Fresh machine to English -> Spanish verse translation: install, build,
# pair the King James Version with the Reina-Valera 1909 (diatheke), train
# the encoder-decoder of jobs/mt-kjv-es.conf on 2 MPI ranks (about 20
# minutes here), then translate five held-out verses beside their
# references, greedy and with a beam of 4.
#   STEPS=200 bash jobs/demo-mt.sh   for a short run
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash jobs/install-deps.sh
bash jobs/build.sh
. jobs/env.sh
T=build/bin/trainer
[ -f data/kjv-es/val-007.h5 ] || bash jobs/prepare-kjv-es.sh >/dev/null
S=()
[ -n "${STEPS:-}" ] && S=(--steps "$STEPS")
mpirun -np 2 $MPI_FLAGS $T train --config jobs/mt-kjv-es.conf --run-dir runs/mt-kjv-es "${S[@]}" |
    grep -E '^(final|trainer|chrF|translation|  )'
# five held-out pairs: the first of validation shard 0's inspect listing
$T inspect data/kjv-es/val-000.h5 | awk 'NR > 1 && NR % 3 == 2 { ref = $0 } NR > 1 && NR % 3 == 0 { en = substr($0, 3) }
    NR > 1 && NR % 3 == 1 { print ref "\t" en "\t" substr($0, 3) }' >runs/mt-kjv-es/held-out.tsv
cut -f2 runs/mt-kjv-es/held-out.tsv >runs/mt-kjv-es/held-out.en
$T translate --checkpoint runs/mt-kjv-es/checkpoint.h5 --lines runs/mt-kjv-es/held-out.en \
    >runs/mt-kjv-es/greedy.es 2>/dev/null
$T translate --checkpoint runs/mt-kjv-es/checkpoint.h5 --lines runs/mt-kjv-es/held-out.en --beam 4 \
    >runs/mt-kjv-es/beam4.es 2>/dev/null
paste runs/mt-kjv-es/held-out.tsv runs/mt-kjv-es/greedy.es runs/mt-kjv-es/beam4.es |
    awk -F'\t' '{ printf "%s\n  English:   %s\n  reference: %s\n  greedy:    %s\n  beam 4:    %s\n", $1, $2, $3, $4, $5 }'
