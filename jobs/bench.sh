#!/bin/bash
# Training throughput, --reduce exact (bitwise the same for any -np) against
# --reduce fast (float allreduce, BLAS threads = cores per rank), at -np 1 and
# 2, runs interleaved so that both see the same machine. Prints the median of
# REPEATS runs and the ratio exact / fast.
#   bash jobs/bench.sh vae     default VAE on data/fmnist, samples/s
#   bash jobs/bench.sh gpt     gpt-kjv on data/kjv, tokens/s
#   bash jobs/bench.sh lstm    lstm-kjv on data/kjv, tokens/s
#   bash jobs/bench.sh words   lstm-kjv-words on data/kjv-words, tokens/s
#   bash jobs/bench.sh gan     the GAN on data/fmnist, samples/s
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. jobs/env.sh
model=${1:-vae}
REPEATS=${REPEATS:-3}
NPS=${NPS:-"1 2"}
case "$model" in
vae) args="--config jobs/vae.conf --steps ${STEPS:-300}"; unit=samples ;;
gpt) args="--config jobs/gpt-kjv.conf --steps ${STEPS:-40} --eval-every 0 --sample-every 0"; unit=tokens ;;
lstm) args="--config jobs/lstm-kjv.conf --steps ${STEPS:-20} --eval-every 0 --sample-every 0"; unit=tokens ;;
words) args="--config jobs/lstm-kjv-words.conf --steps ${STEPS:-200} --eval-every 0"; unit=tokens ;;
gan) args="--config jobs/gan.conf --steps ${STEPS:-300}"; unit=samples ;;
*) echo "usage: $0 vae|gpt|lstm|words|gan" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$REPEATS"); do
    for np in $NPS; do
        for mode in exact fast; do
            mpirun -np "$np" $MPI_FLAGS build/bin/trainer train $args --run-dir "$tmp/run" \
                --log-every 1000 --reduce "$mode" --checkpoint-every 0 ${ARGS:-} 2>&1 |
                sed -n "s/^final: .*train \([0-9]*\) $unit\/s.*/\1/p" >>"$tmp/$mode-$np"
        done
    done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%s: %s/s, median of %s runs; %s\n' "$model" "$unit" "$REPEATS" "$(build/bin/trainer --version)"
printf '%-6s %12s %12s %8s\n' "-np" "exact" "fast" "ratio"
for np in $NPS; do
    e=$(median "$tmp/exact-$np")
    f=$(median "$tmp/fast-$np")
    printf '%-6s %12s %12s %8.2f\n' "$np" "$e" "$f" "$(awk -v e="$e" -v f="$f" 'BEGIN {print e / f}')"
done
