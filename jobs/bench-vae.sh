#!/bin/bash
# Training throughput of the default VAE on Fashion-MNIST: --reduce exact
# against --reduce fast, at -np 1 and 2, runs interleaved so that both see the
# same machine; prints the median samples/s of REPEATS runs of STEPS steps.
#   bash jobs/bench-vae.sh            (after jobs/demo.sh, or build + prepare)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. jobs/env.sh
STEPS=${STEPS:-300}
REPEATS=${REPEATS:-3}
NPS=${NPS:-"1 2"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$REPEATS"); do
    for np in $NPS; do
        for mode in exact fast; do
            mpirun -np "$np" $MPI_FLAGS build/bin/trainer train --data "${DATA:-data/fmnist}" \
                --run-dir "$tmp/run" --steps "$STEPS" --log-every "$STEPS" --reduce "$mode" \
                --checkpoint-every 0 ${ARGS:-} 2>&1 |
                sed -n 's/^final: .*train \([0-9]*\) samples\/s.*/\1/p' >>"$tmp/$mode-$np"
        done
    done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%-6s %14s %14s %8s\n' "-np" "exact (s/s)" "fast (s/s)" "ratio"
for np in $NPS; do
    e=$(median "$tmp/exact-$np")
    f=$(median "$tmp/fast-$np")
    printf "%-6s %14s %14s %8.2f\n" "$np" "$e" "$f" "$(awk -v e="$e" -v f="$f" "BEGIN {print e / f}")"
done
echo "(median of $REPEATS runs of $STEPS steps each, samples/s over training steps only)"
