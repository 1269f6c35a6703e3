#!/bin/bash
# The golden file: short exact-mode runs of every model on the tests' own
# synthetic data (the data make_data writes is the same bytes everywhere),
# and what eval, sample, translate and score print from their checkpoints, against
# tests/golden.txt, recorded once. The same bits are due on every x86-64
# CPU, with any OpenBLAS kernel, and from every vector path of the products
# that the CPU runs (TRAINER_GEMM=avx512, avx2, scalar): each path the CPU
# has is checked. A mismatch names the run and both values.
#   GOLDEN_RECORD=1 ...  writes tests/golden.txt anew from the best path
#   GOLDEN_PATHS="avx2"  only these paths
# A change that moves bits on purpose records the file again in the same
# commit and says why.
. "$(dirname "$0")/lib.sh"
GOLDEN=${GOLDEN:-${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/golden.txt}
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
make_synthetic_text || { bad "synthetic text"; finish; exit 1; }
make_synthetic_pairs || { bad "synthetic pairs"; finish; exit 1; }
"$TRAINER" prepare --source text --tokens words --vocab 200 --input "$TESTTMP/text.txt" \
    --out "$TESTTMP/words" --shards 8 >/dev/null || bad "synthetic words"

I="--data $TESTTMP/data --log-every 100 --checkpoint-every 0"
T="--data $TESTTMP/text --log-every 100 --checkpoint-every 0 --val-windows 16 --eval-every 0 --sample-every 0"
W="--data $TESTTMP/words --log-every 100 --checkpoint-every 0 --val-windows 16 --eval-every 0 --sample-every 0"
# name, -np, steps, arguments: every model, both exact reductions (the lane
# tree: one micro-step and a power-of-two lane count; the fixed-point lane
# sum otherwise), dropout and micro-steps in the language models
RUNS=(
    "vae-tree 2 12 --batch 32 --hidden 64,32 --latent 8 $I"
    "vae-sum 2 12 --batch 32 --hidden 64,32 --latent 8 --micro-steps 2 $I"
    "vae-gauss 1 12 --batch 32 --hidden 64,32 --latent 8 --likelihood gaussian --kl-weight 0.5 $I"
    "ae 1 12 --batch 32 --hidden 64,32 --latent 8 --autoencoder $I"
    "gan 2 12 --model gan --batch 32 --latent 8 $I"
    "classifier 2 12 --model classifier --batch 32 $I"
    "glow 2 6 --model glow --batch 16 --flow-steps 2 --width 8 $I"
    "gpt 2 12 --model gpt --layers 2 --dim 32 --heads 2 --ctx 32 --batch 16 --lr 3e-3 --warmup 4 --dropout 0.1 --micro-steps 2 $T"
    "lstm 2 12 --model lstm --layers 2 --embed 16 --dim 32 --ctx 16 --batch 16 --lr 3e-3 --warmup 4 --dropout 0.1 --micro-steps 2 $T"
    "lstm-words 2 12 --model lstm --layers 1 --embed 16 --dim 32 --ctx 16 --batch 16 --lr 3e-3 --warmup 4 $W"
    "seq2seq 2 12 --model seq2seq --data $TESTTMP/pairs --batch 16 --dim 16 --heads 2 --layers 1 --dropout 0.1 --micro-steps 2 --warmup 4 --log-every 100 --checkpoint-every 0"
)

# The first 16 hex digits of the MD5 of what a command printed, its
# temporary folder's name taken out.
digest() { sed "s|$TESTTMP|TMP|g" | md5sum | cut -c1-16; }

# The figures of one vector path, as "name value" lines, into $1.
figures() { # OUT
    local out=$1 spec name np steps dir
    : >"$out"
    for spec in "${RUNS[@]}"; do
        read -r name np steps args <<<"$spec"
        dir="$TESTTMP/run-$name"
        rm -rf "$dir"
        if ! timeout 600 $MPI -np "$np" -x TRAINER_GEMM "$TRAINER" train $args --steps "$steps" \
            --run-dir "$dir" >"$TESTTMP/log" 2>&1; then
            bad "$name: the run failed: $(tail -3 "$TESTTMP/log")"
            continue
        fi
        echo "train/$name $(params_checksum "$dir/checkpoint.h5")" >>"$out"
        echo "loss/$name $(sed -n 's/^final: step [0-9]*, .* \([0-9.]*\) nats\/\([a-z]*\).*/\1/p' "$TESTTMP/log")" >>"$out"
    done
    # what the other commands print from the checkpoints: the same bits too
    local C="$TESTTMP/run"
    echo "eval/vae $("$TRAINER" eval --checkpoint "$C-vae-tree/checkpoint.h5" --data "$TESTTMP/data" 2>&1 | digest)" >>"$out"
    echo "eval/classifier $("$TRAINER" eval --checkpoint "$C-classifier/checkpoint.h5" --data "$TESTTMP/data" 2>&1 | digest)" >>"$out"
    echo "eval/glow $("$TRAINER" eval --checkpoint "$C-glow/checkpoint.h5" --data "$TESTTMP/data" 2>&1 | digest)" >>"$out"
    echo "eval/gpt $("$TRAINER" eval --checkpoint "$C-gpt/checkpoint.h5" --data "$TESTTMP/text" --val-windows 16 2>&1 | digest)" >>"$out"
    echo "eval/seq2seq $("$TRAINER" eval --checkpoint "$C-seq2seq/checkpoint.h5" --data "$TESTTMP/pairs" 2>&1 | digest)" >>"$out"
    local m
    for m in vae-tree gan glow; do
        "$TRAINER" sample --checkpoint "$C-$m/checkpoint.h5" --data "$TESTTMP/data" --count 16 --seed 2 \
            --out "$TESTTMP/s-$m.h5" >/dev/null 2>&1
        echo "sample/$m $(h5dump -d images "$TESTTMP/s-$m.h5" 2>&1 | digest)" >>"$out"
    done
    echo "score/gan $("$TRAINER" score --images "$TESTTMP/s-gan.h5" --classifier "$C-classifier/checkpoint.h5" \
        --data "$TESTTMP/data" 2>&1 | digest)" >>"$out"
    for m in gpt lstm; do
        echo "sample/$m $("$TRAINER" sample --checkpoint "$C-$m/checkpoint.h5" --data "$TESTTMP/text" --prompt And \
            --length 60 --temperature 0.8 --top-k 20 --seed 3 2>/dev/null | digest)" >>"$out"
    done
    echo "translate/seq2seq $("$TRAINER" translate --checkpoint "$C-seq2seq/checkpoint.h5" --data "$TESTTMP/pairs" \
        --beam 3 "And the light was good 2 times in day 7." 2>/dev/null | digest)" >>"$out"
}

paths=${GOLDEN_PATHS:-"avx512 avx2 scalar"}
first=""
for path in $paths; do
    export TRAINER_GEMM=$path
    got=$("$TRAINER" --version | sed -n 's/.*exact products \([a-z0-9]*\).*/\1/p')
    if [ "$got" != "$path" ]; then
        echo "SKIP: this CPU cannot run the $path products (it runs $got)"
        continue
    fi
    figures "$TESTTMP/$path.txt"
    [ -n "$first" ] || first=$path
    if [ -n "${GOLDEN_RECORD:-}" ] && [ "$path" = "$first" ]; then
        { echo "# tests/golden.txt: written by GOLDEN_RECORD=1 tests/golden.sh; see that script."
          echo "# recorded on: $("$TRAINER" --version | tr '\n' ' ')"
          cat "$TESTTMP/$path.txt"; } >"$GOLDEN"
        ok "recorded $(wc -l <"$TESTTMP/$path.txt") figures into $GOLDEN"
    fi
    while read -r name value; do
        want=$(awk -v n="$name" '$1 == n {print $2}' "$GOLDEN")
        if [ -z "$want" ]; then
            bad "$path: $name: not in $GOLDEN (got $value)"
        elif [ "$want" = "$value" ]; then
            ok "$path: $name $value"
        else
            bad "$path: $name: golden $want, this machine $value"
        fi
    done <"$TESTTMP/$path.txt"
    n=$(grep -vc '^#' "$GOLDEN")
    [ "$(wc -l <"$TESTTMP/$path.txt")" = "$n" ] || bad "$path: $(wc -l <"$TESTTMP/$path.txt") figures, the golden file has $n"
done
[ -n "$first" ] || bad "no vector path ran"
echo "golden: $("$TRAINER" --version | tr '\n' ' ')"
finish
