#!/bin/bash
# Fresh machine to the image models side by side: install, build, prepare
# Fashion-MNIST, train the classifier (the score's feature space), the VAE,
# the GAN and Glow on 2 MPI ranks, write 10,000 samples of each generator
# (Glow's at temperature 0.7) and their PNG grids, and print the Frechet
# distances in one table.
#   EPOCHS=1 bash jobs/demo-images.sh   for a short run (default: each config's)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash jobs/install-deps.sh
bash jobs/build.sh
. jobs/env.sh
T=build/bin/trainer
[ -f data/fmnist/test-007.h5 ] || $T prepare --input /usr/share/datasets/fashion-mnist --out data/fmnist --shards 8
E=()
[ -n "${EPOCHS:-}" ] && E=(--epochs "$EPOCHS")
mkdir -p runs/images
for m in classifier vae gan glow; do
    mpirun -np 2 $MPI_FLAGS $T train --config jobs/$m.conf --run-dir runs/images/$m "${E[@]}" |
        grep -E '^(final|trainer)'
done
for m in vae gan glow; do
    $T sample --checkpoint runs/images/$m/checkpoint.h5 --count 10000 --seed 1 \
        --out runs/images/$m-samples.h5 --png runs/images/$m-samples.png
done
$T sample --checkpoint runs/images/vae/checkpoint.h5 --recon-png runs/images/vae-reconstructions.png
printf '\n%-28s %s\n' "images (10,000)" "Frechet distance to the test split, classifier features"
for f in vae-samples gan-samples glow-samples; do
    d=$($T score --images runs/images/$f.h5 --classifier runs/images/classifier/checkpoint.h5)
    printf '%-28s %s\n' "$f" "$(sed -n 's/^frechet distance: //p' <<<"$d")"
done
printf '%-28s %s\n' "train split (the floor)" "$(sed -n 's/^floor: \([0-9.]*\).*/\1/p' <<<"$d")"
echo "pictures: runs/images/{vae,gan,glow}-samples.png, runs/images/vae-reconstructions.png"
