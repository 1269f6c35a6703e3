#!/bin/bash
# Bad input: each case must end every rank with a non-zero status within the
# time limit, print exactly one "trainer: ..." line naming the problem, and
# never dump core or hang. Run under mpirun -np 2 unless a case says so.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
D="$TESTTMP/data"
TRAIN="train --steps 2 --batch 32 --hidden 64,32 --log-every 1"

# expect_fail NAME PATTERN NP ARGS...
expect_fail() {
    local name=$1 pattern=$2 np=$3
    shift 3
    local start=$SECONDS status
    # ULIMIT_F=KB: a file size limit for the ranks (after MPI_Init's shared
    # memory, which the limit would break: TCP between the ranks then)
    local launch=("$TRAINER")
    [ -n "${ULIMIT_F:-}" ] &&
        launch=(--mca btl self,tcp bash -c 'ulimit -f "$1" && shift && exec "$@"' limit "$ULIMIT_F" "$TRAINER")
    timeout 60 $MPI -np "$np" "${launch[@]}" "$@" >"$TESTTMP/out" 2>"$TESTTMP/err"
    status=$?
    local took=$((SECONDS - start))
    local lines
    lines=$(grep -c '^trainer: ' "$TESTTMP/err")
    if [ "$status" = 124 ]; then
        bad "$name: hung (killed after 60 s)"
    elif [ "$status" = 0 ] || [ "$status" -ge 128 ]; then
        bad "$name: exit status $status"
    elif [ "$lines" != 1 ]; then
        bad "$name: $lines 'trainer:' lines, expected 1"
        cat "$TESTTMP/err"
    elif ! grep -q -- "$pattern" "$TESTTMP/err"; then
        bad "$name: message does not say \"$pattern\": $(grep '^trainer: ' "$TESTTMP/err")"
    else
        ok "$name (status $status, ${took}s): $(grep '^trainer: ' "$TESTTMP/err")"
    fi
}

# A copy of the good data with one thing broken.
broken() {
    rm -rf "$TESTTMP/bad" && cp -r "$D" "$TESTTMP/bad"
}

expect_fail "Glow levels the image sides cannot take" "glow: --levels 3 needs one-channel images whose sides divide by 8; these are 28 x 28" \
    2 train --model glow --levels 3 --steps 2 --batch 16 --data "$D" --run-dir "$TESTTMP/r"

broken && rm "$TESTTMP/bad/train-003.h5"
expect_fail "missing shard" "train-003.h5: shard file missing" 2 $TRAIN --data "$TESTTMP/bad" --run-dir "$TESTTMP/r"

broken && truncate -s 3000 "$TESTTMP/bad/train-001.h5"
expect_fail "truncated shard" "train-001.h5: .*truncated or corrupt" 2 $TRAIN --data "$TESTTMP/bad" --run-dir "$TESTTMP/r"

for kind in name type shape; do
    broken && "$TOP_BUILDDIR/tests/make_data" bad $kind "$TESTTMP/bad/train-002.h5" 2 8
    case $kind in
    name) want='no dataset "images"' ;;
    type) want='dataset "images" is uint16, expected uint8' ;;
    shape) want='dataset "images" has 2 dimensions, expected 3' ;;
    esac
    expect_fail "dataset with wrong $kind" "train-002.h5: $want" 2 $TRAIN --data "$TESTTMP/bad" --run-dir "$TESTTMP/r"
done

"$TRAINER" prepare --input "$TESTTMP/idx" --out "$TESTTMP/one" --shards 1 >/dev/null
expect_fail "fewer shards than ranks" "1 train shards for 2 ranks" 2 $TRAIN --data "$TESTTMP/one" --run-dir "$TESTTMP/r"
expect_fail "no data folder" "shard file missing" 2 $TRAIN --data "$TESTTMP/nowhere" --run-dir "$TESTTMP/r"
expect_fail "batch not divisible" "batch 100 is not divisible by --lanes 8" 2 $TRAIN --batch 100 --data "$D"
expect_fail "ranks do not divide lanes" "np 3 does not divide --lanes 8" 3 $TRAIN --data "$D" --run-dir "$TESTTMP/r"
expect_fail "unknown flag" "unknown option --bogus" 2 $TRAIN --bogus 1 --data "$D"
expect_fail "negative learning rate" "lr: -0.001 is out of range" 2 $TRAIN --lr -0.001 --data "$D"
expect_fail "learning rate not a number" 'lr: "fast" is not a number' 2 $TRAIN --lr fast --data "$D"
printf 'lr = 1e-3\nbogus_key = 4\n' >"$TESTTMP/bad.conf"
expect_fail "unknown config key" 'bad.conf:2: unknown key "bogus_key"' 2 $TRAIN --config "$TESTTMP/bad.conf" --data "$D"
expect_fail "missing config file" "cannot open config file" 2 $TRAIN --config "$TESTTMP/none.conf" --data "$D"
expect_fail "unknown command" 'unknown command "trian"' 1 trian
expect_fail "bench-comm sizes" 'sizes wants parameter counts' 2 bench-comm --sizes 10,ten
expect_fail "bench-comm ranks" 'power of two ranks, not 3' 3 bench-comm
expect_fail "bench-comm flag" 'bench-comm takes --sizes' 2 bench-comm --bogus

make_synthetic_text || bad "synthetic text"
GPTT="train --model gpt --data $TESTTMP/text --layers 1 --dim 32 --heads 2 --ctx 16 --batch 16 --steps 2"
expect_fail "dim not divisible by heads" "dim 30 is not divisible by --heads 4" 2 $GPTT --dim 30 --heads 4
expect_fail "gpt on image shards (no val split)" "val-000.h5: shard file missing" 2 $GPTT --data "$D" --run-dir "$TESTTMP/r"
cp "$D/train-000.h5" "$D/val-000.h5"
expect_fail "gpt on image shards" 'train-000.h5: no dataset "tokens"' 1 $GPTT --data "$D" --run-dir "$TESTTMP/r"
rm "$D/val-000.h5"
expect_fail "micro-steps that do not divide" "micro-steps 3 does not divide the per-lane batch 2" 2 $GPTT --micro-steps 3
expect_fail "a gpt option given to the vae" "heads is an option of the gpt and seq2seq models, not of vae" 2 $TRAIN --heads 4 --data "$D"
printf 'model = vae\nctx = 64\n' >"$TESTTMP/owner.conf"
expect_fail "a text-task key in a vae config file" "ctx is an option of the text task" 2 $TRAIN --config "$TESTTMP/owner.conf" --data "$D"
expect_fail "an unknown model" '"diffusion" is not a model (vae, gpt, lstm, gan, classifier, glow, seq2seq)' 2 $TRAIN --model diffusion --data "$D"

# Checkpoints: a good one must survive every refused resume untouched.
R="$TESTTMP/good"
if timeout 60 $MPI -np 2 "$TRAINER" $TRAIN --data "$D" --run-dir "$R" >/dev/null 2>&1; then
    ok "2-step run for the checkpoint cases"
else
    bad "2-step run for the checkpoint cases"
fi
before=$(params_checksum "$R/checkpoint.h5")
expect_fail "resume with another shape" "enc.fc1.weight is 64x784, this model's is 128x784" 2 \
    $TRAIN --data "$D" --run-dir "$R" --resume auto --hidden 128,32
expect_fail "resume a non-checkpoint" "not a trainer checkpoint" 2 \
    $TRAIN --data "$D" --run-dir "$TESTTMP/r2" --resume "$D/train-000.h5"
expect_fail "resume a missing file" "checkpoint missing" 2 \
    $TRAIN --data "$D" --run-dir "$TESTTMP/r2" --resume "$TESTTMP/none.h5"
expect_fail "resume a gpt run from a vae checkpoint" "holds a vae model" 2 \
    $TRAIN --data "$D" --run-dir "$R" --resume auto --model gpt
expect_fail "image sample with nowhere to put it" "say where the images go" 1 \
    sample --checkpoint "$R/checkpoint.h5" --data "$D"
expect_fail "score with a vae for a classifier" "a vae, not a classifier" 1 \
    score --classifier "$R/checkpoint.h5" --images "$D/test-000.h5" --data "$D"
expect_fail "score without a classifier" "classifier PATH is required" 1 score --images "$D/test-000.h5"
# A checkpoint write that runs out of room (a file size limit here, a full
# disk elsewhere): one line, exit 1, the previous checkpoint whole.
ULIMIT_F=64 expect_fail "checkpoint write past the file size limit" \
    "checkpoint.h5.tmp: cannot write checkpoint (65536 of [0-9]* bytes written): File too large" 2 \
    $TRAIN --data "$D" --run-dir "$R" --resume auto --steps 4
[ -e "$R/checkpoint.h5.tmp" ] && bad "a partial checkpoint.h5.tmp was left behind"
after=$(params_checksum "$R/checkpoint.h5")
if [ -n "$before" ] && [ "$before" = "$after" ] &&
    timeout 60 $MPI -np 2 "$TRAINER" eval --checkpoint "$R/checkpoint.h5" --data "$D" >/dev/null 2>&1; then
    ok "checkpoint unchanged and readable after refused resumes and a failed write ($before)"
else
    bad "checkpoint changed or unreadable: $before -> $after"
fi

# Damaged checkpoints are refused on resume, naming what is wrong; the user's
# case first: a NaN in one Adam moment that a ReLU would hide.
for damage in "adam_m/dec.fc1.bias 3 nan" "adam_v/enc.mu.weight 0 inf" "params/dec.out.bias 1 0.5" \
    "adam_m/enc.fc1.weight 7 1e-3"; do
    set -- $damage
    cp "$R/checkpoint.h5" "$TESTTMP/damaged.h5"
    "$TOP_BUILDDIR/tests/make_data" poke "$TESTTMP/damaged.h5" "/$1" "$2" "$3"
    case $3 in
    nan | inf) want="tensor /$1 holds $3 at index $2: damaged checkpoint" ;;
    *) want="the checksum of /${1%%/*} does not match" ;;
    esac
    expect_fail "resume with $3 in /$1[$2]" "$want" 2 \
        $TRAIN --data "$D" --run-dir "$TESTTMP/r3" --resume "$TESTTMP/damaged.h5"
done
expect_fail "prepare reading a folder as text" "Is a directory" 1 \
    prepare --source text --input "$TESTTMP" --out "$TESTTMP/p"

# Help and version answer and exit 0.
for args in "--help" "--version" "train --help" "prepare --help" "eval --help" "sample --help"; do
    if "$TRAINER" $args >/dev/null 2>&1; then ok "trainer $args"; else bad "trainer $args"; fi
done
finish
