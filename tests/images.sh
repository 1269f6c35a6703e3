#!/bin/bash
# The image side end to end on the synthetic images: a classifier reports
# its accuracy, a GAN trains in its two phases, a small Glow learns (bits
# per dimension fall, its test images go to z and back within 1e-4),
# sample writes generated images as a shard file and a PNG grid (and the
# VAE's reconstructions; Glow's at a temperature), score gives the Frechet
# distance and the floor, and the same seed gives the same images.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
D="$TESTTMP/data"
run() { # NAME RUN_DIR PATTERN ARGS...
    local name=$1 dir=$2 pattern=$3
    shift 3
    if timeout 300 $MPI -np 2 "$TRAINER" train --data "$D" --batch 32 --run-dir "$dir" "$@" \
        >"$TESTTMP/log" 2>&1 && grep -q "$pattern" "$TESTTMP/log"; then
        ok "$name: $(grep '^final:' "$TESTTMP/log")"
    else
        bad "$name: $(tail -3 "$TESTTMP/log")"
    fi
}
run "classifier" "$TESTTMP/cls" "test cross-entropy .* (accuracy [0-9.]*%)" --model classifier --steps 60 --log-every 30
acc=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$TESTTMP/log")
awk -v a="$acc" 'BEGIN { exit !(a > 50) }' && ok "the classifier learned the ten shapes: $acc% test accuracy" ||
    bad "classifier accuracy $acc%"
run "GAN, two phases a step" "$TESTTMP/gan" "test discriminator loss" --model gan --steps 20 --log-every 10
grep -q "loss D [0-9.]* G [0-9.]* nats/image" "$TESTTMP/log" && ok "the progress line shows both losses" ||
    bad "no D and G losses on the progress line"
run "VAE" "$TESTTMP/vae" "test negative ELBO" --steps 20 --hidden 64,32
run "Glow" "$TESTTMP/glow" "test negative log-likelihood .* bits/dim" --model glow --steps 40 \
    --flow-steps 2 --width 16 --warmup 10 --log-every 20
first=$(grep -m1 '^step' "$TESTTMP/log" | sed -n 's/.*(\([0-9.]*\) bits\/dim).*/\1/p')
last=$(sed -n 's/^final:.*(\([0-9.]*\) bits\/dim).*/\1/p' "$TESTTMP/log")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a && b > 0) }' &&
    ok "Glow learns: $first bits/dim at step 20, test $last at step 40" || bad "Glow: $first then $last bits/dim"
out=$("$TRAINER" eval --checkpoint "$TESTTMP/glow/checkpoint.h5" --data "$D" 2>&1)
err=$(sed -n 's/^invertibility: .*largest \([0-9.e+-]*\);.*/\1/p' <<<"$out")
awk -v e="$err" 'BEGIN { exit !(e != "" && e < 1e-4) }' &&
    ok "Glow: test images to z and back, largest relative error $err" || bad "Glow invertibility: $out"
grep -q "test negative log-likelihood .*($last bits/dim)" <<<"$out" &&
    ok "Glow: eval repeats the run's test bits/dim" || bad "Glow eval: $out (run: $last)"
for t in 0.7 1.0; do
    "$TRAINER" sample --checkpoint "$TESTTMP/glow/checkpoint.h5" --count 16 --temperature $t --seed 2 \
        --out "$TESTTMP/glow$t.h5" --png "$TESTTMP/glow$t.png" >/dev/null || bad "Glow sample at $t"
done
[ -s "$TESTTMP/glow0.7.png" ] && [ "$(h5dump -d /images "$TESTTMP/glow0.7.h5" | tail -n +2 | md5sum)" != \
    "$(h5dump -d /images "$TESTTMP/glow1.0.h5" | tail -n +2 | md5sum)" ] &&
    ok "Glow samples at temperatures 0.7 and 1.0 (different images)" || bad "Glow samples"
S=(--count 50 --seed 3)
if "$TRAINER" sample --checkpoint "$TESTTMP/gan/checkpoint.h5" "${S[@]}" --out "$TESTTMP/a.h5" \
    --png "$TESTTMP/a.png" >/dev/null &&
    "$TRAINER" sample --checkpoint "$TESTTMP/gan/checkpoint.h5" "${S[@]}" --out "$TESTTMP/b.h5" >/dev/null &&
    h5dump -d /images -H "$TESTTMP/a.h5" | grep -q "( 50, 28, 28 )"; then
    ok "GAN samples: 50 images of 28x28 in a shard file"
else
    bad "GAN samples not written"
fi
[ "$(h5dump -d /images "$TESTTMP/a.h5" | tail -n +2 | md5sum)" = "$(h5dump -d /images "$TESTTMP/b.h5" | tail -n +2 | md5sum)" ] &&
    ok "the same seed, the same images" || bad "samples differ for one seed"
# an 8-bit grayscale PNG of a 8x7 grid of 30x30 cells plus the border: 242 x 212
png_size=$(od -An -tx1 -j16 -N8 "$TESTTMP/a.png" | tr -d ' \n')
[ "$(head -c 8 "$TESTTMP/a.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
    [ "$png_size" = 000000f2000000d4 ] && ok "PNG grid 242 x 212 pixels" || bad "PNG header $png_size"
if "$TRAINER" sample --checkpoint "$TESTTMP/vae/checkpoint.h5" --data "$D" --recon-png "$TESTTMP/r.png" \
    --png "$TESTTMP/v.png" >/dev/null && [ -s "$TESTTMP/r.png" ] && [ -s "$TESTTMP/v.png" ]; then
    ok "VAE samples and reconstructions as PNG"
else
    bad "VAE PNGs"
fi
out=$("$TRAINER" score --images "$TESTTMP/a.h5" --classifier "$TESTTMP/cls/checkpoint.h5" --data "$D" 2>&1)
fd=$(sed -n 's/^frechet distance: //p' <<<"$out")
floor=$(sed -n 's/^floor: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -n "$fd" ] && [ -n "$floor" ] && awk -v a="$fd" -v b="$floor" 'BEGIN { exit !(a > b && b >= 0) }'; then
    ok "score: Frechet distance $fd above the train-vs-test floor $floor"
else
    bad "score: $out"
fi
real=$("$TRAINER" score --images "$D/train-000.h5" --classifier "$TESTTMP/cls/checkpoint.h5" --data "$D" |
    sed -n 's/^frechet distance: //p')
awk -v a="$real" -v b="$fd" 'BEGIN { exit !(a < b) }' &&
    ok "real training images ($real) score closer than a 20-step GAN's ($fd)" ||
    bad "real images $real, GAN $fd"
finish
