#!/bin/bash
# Training throughput, --reduce exact (bitwise the same for any -np) against
# --reduce fast (float allreduce, BLAS threads = cores per rank), at -np 1 and
# 2, and the PyTorch reference (jobs/reference/, Debian's python3-torch; for
# vae, gpt and lstm), runs interleaved so that all see the same machine.
# Prints the median of REPEATS runs and the ratios exact / fast and exact /
# PyTorch. NO_REFERENCE=1 leaves PyTorch out.
#   bash jobs/bench.sh vae     default VAE on data/fmnist, samples/s
#   bash jobs/bench.sh gpt     gpt-kjv on data/kjv, tokens/s
#   bash jobs/bench.sh lstm    lstm-kjv on data/kjv, tokens/s
#   bash jobs/bench.sh words   lstm-kjv-words on data/kjv-words, tokens/s
#   bash jobs/bench.sh gan     the GAN on data/fmnist, samples/s
#   bash jobs/bench.sh glow    Glow (jobs/glow.conf) on data/fmnist, samples/s
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. jobs/env.sh
model=${1:-vae}
REPEATS=${REPEATS:-3}
NPS=${NPS:-"1 2"}
ref=""
case "$model" in
vae) args="--config jobs/vae.conf --steps ${STEPS:-300}"; unit=samples
    ref="jobs/reference/vae.py --steps ${STEPS:-300}" ;;
gpt) args="--config jobs/gpt-kjv.conf --steps ${STEPS:-40} --eval-every 0 --sample-every 0"; unit=tokens
    ref="jobs/reference/gpt_kjv.py --steps ${STEPS:-40} --eval-every 0" ;;
lstm) args="--config jobs/lstm-kjv.conf --steps ${STEPS:-20} --eval-every 0 --sample-every 0"; unit=tokens
    ref="jobs/reference/lstm_kjv.py --steps ${STEPS:-20} --eval-every 0" ;;
words) args="--config jobs/lstm-kjv-words.conf --steps ${STEPS:-200} --eval-every 0"; unit=tokens ;;
gan) args="--config jobs/gan.conf --steps ${STEPS:-300}"; unit=samples ;;
glow) args="--config jobs/glow.conf --steps ${STEPS:-100}"; unit=samples
    ref="jobs/reference/glow.py --steps ${STEPS:-100} --eval 500"
    ref_threads=$(nproc) ;; # its convolutions (oneDNN) are fastest on every core
*) echo "usage: $0 vae|gpt|lstm|words|gan|glow" >&2; exit 2 ;;
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
    # PyTorch at its best setting here: one torch thread, OpenBLAS on every
    # core (the MLPs and the language models), or torch threads on every core
    if [ -n "$ref" ] && [ -z "${NO_REFERENCE:-}" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        OPENBLAS_NUM_THREADS=$(nproc) /usr/bin/python3 $ref --threads "${ref_threads:-1}" 2>&1 |
            sed -n "s/^final: .*train \([0-9]*\) $unit\/s.*/\1/p" >>"$tmp/torch"
    fi
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%s: %s/s, median of %s runs; %s\n' "$model" "$unit" "$REPEATS" "$(build/bin/trainer --version)"
t=""
[ -s "$tmp/torch" ] && t=$(median "$tmp/torch")
printf '%-6s %12s %12s %8s %12s %14s\n' "-np" "exact" "fast" "ratio" "PyTorch" "exact/PyTorch"
for np in $NPS; do
    e=$(median "$tmp/exact-$np")
    f=$(median "$tmp/fast-$np")
    printf '%-6s %12s %12s %8.2f %12s %14s\n' "$np" "$e" "$f" "$(awk -v e="$e" -v f="$f" 'BEGIN {print e / f}')" \
        "${t:--}" "$([ -n "$t" ] && awk -v e="$e" -v t="$t" 'BEGIN {printf "%.2f", e / t}' || echo -)"
done
[ -n "$t" ] && echo "PyTorch: $ref, torch ${ref_threads:-1} thread(s), OPENBLAS_NUM_THREADS=$(nproc), the same OpenBLAS kernel"
