#!/bin/bash
# Fresh machine to a trained VAE: install, build, prepare Fashion-MNIST into
# HDF5 shards, train with 2 MPI ranks, evaluate the checkpoint, show it.
# EPOCHS=1 bash jobs/demo.sh for a short run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash jobs/install-deps.sh
bash jobs/build.sh
. jobs/env.sh
T=build/bin/trainer
$T prepare --source fashion-mnist --input /usr/share/datasets/fashion-mnist --out data/fmnist --shards 8
mpirun -np 2 $MPI_FLAGS $T train --config jobs/vae.conf --run-dir runs/vae-demo --epochs "${EPOCHS:-10}"
mpirun -np 2 $MPI_FLAGS $T eval --checkpoint runs/vae-demo/checkpoint.h5 --data data/fmnist
echo "checkpoint runs/vae-demo/checkpoint.h5, its parameters (h5dump shows everything):"
h5ls -r runs/vae-demo/checkpoint.h5 | grep '^/params/'
