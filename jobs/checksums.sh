#!/bin/bash
# The parameter checksums of the reference runs on the real data: the
# regression check for a change that must not move a bit (a refactor, a new
# model beside the old ones). Record the output before the change, compare
# after it:
#   bash jobs/checksums.sh > before.txt; ...; bash jobs/checksums.sh | diff before.txt -
# Needs data/fmnist and data/kjv (jobs/demo.sh, jobs/prepare-kjv.sh). The
# exact runs' figures are the same on every CPU and OpenBLAS kernel; the two
# --reduce fast runs' hold for the kernel the first line names.
#   bash jobs/checksums.sh --check
# instead runs the golden check (tests/golden.sh: every model on the tests'
# own data, once per vector path this CPU has) against tests/golden.txt and
# exits non-zero, naming the run and both values, on a mismatch.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "${1:-}" = --check ]; then
    [ -x build/bin/trainer ] && [ -x build/tests/make_data ] ||
        { bash jobs/build.sh >/dev/null && make -C build tests/make_data >/dev/null; }
    TOP_BUILDDIR="$top/build" TOP_SRCDIR="$top" bash tests/golden.sh | grep -v '^PASS: '
    exit "${PIPESTATUS[0]}"
fi
. jobs/env.sh
T=${TRAINER:-build/bin/trainer}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sum() { h5dump -a /params_fnv1a64 "$1/checkpoint.h5" | sed -n 's/^ *(0): *//p'; }
ref() { # NAME NP ARGS...
    local name=$1 np=$2
    shift 2
    mpirun -np "$np" $MPI_FLAGS "$T" train "$@" --run-dir "$tmp/$name" --checkpoint-every 0 \
        >"$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log" >&2; return 1; }
    printf '%-20s %-22s %s\n' "$name" "$(sum "$tmp/$name")" \
        "$(sed -n 's/^final: step [0-9]*, .* \([0-9.]*\) nats\/\([a-z]*\).*/\1 nats\/\2/p' "$tmp/$name.log")"
}
"$T" --version
ref vae-40-np2 2 --config jobs/vae.conf --steps 40
ref gpt-10-np2 2 --config jobs/gpt-kjv.conf --steps 10 --dropout 0.1 --micro-steps 2 --eval-every 0 --sample-every 0
ref vae-gauss-np1 1 --config jobs/vae.conf --steps 20 --likelihood gaussian --kl-weight 0.5
ref ae-np1 1 --config jobs/vae.conf --steps 20 --autoencoder
ref vae-fast-np2 2 --config jobs/vae.conf --steps 20 --reduce fast --threads 1
ref gpt-fast-np2 2 --config jobs/gpt-kjv.conf --steps 6 --reduce fast --threads 1 --eval-every 0 --sample-every 0
ref glow-12-np2 2 --config jobs/glow.conf --steps 12
