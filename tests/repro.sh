#!/bin/bash
# Bitwise reproducibility (--reduce exact, the default), for a small VAE (in
# the fixed-point sum with micro-steps, and in the lane tree without), a
# small GPT, a small LSTM, a small encoder-decoder (all four with gradient
# accumulation, the language models with dropout), a small GAN (two phases a
# step), a small classifier and a small Glow (the last three in the lane
# tree): the parameters after 12
# steps are the same bits for -np 1, 2, 4 and 8, for any number of lane
# threads, for a run stopped at step 5 at -np 4 and resumed at -np 2, and for
# the same run twice.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
make_synthetic_text || { bad "synthetic text"; finish; exit 1; }
make_synthetic_pairs || { bad "synthetic pairs"; finish; exit 1; }
VAE="train --data $TESTTMP/data --batch 32 --hidden 64,32 --latent 8 --micro-steps 2 --log-every 100"
# one micro-step and 8 lanes: the lane tree (nn/gemm.h) instead of the fixed-point sum
TREE="train --data $TESTTMP/data --batch 32 --hidden 64,32 --latent 8 --log-every 100"
GPT="train --model gpt --data $TESTTMP/text --layers 2 --dim 32 --heads 2 --ctx 32 --batch 16
     --lr 3e-3 --warmup 4 --dropout 0.1 --micro-steps 2 --val-windows 16 --eval-every 0
     --log-every 100"

LSTM="train --model lstm --data $TESTTMP/text --layers 2 --embed 16 --dim 32 --ctx 16 --batch 16
     --lr 3e-3 --warmup 4 --dropout 0.1 --micro-steps 2 --val-windows 16 --eval-every 0
     --log-every 100"

GAN="train --model gan --data $TESTTMP/data --batch 32 --latent 8 --log-every 100"
CLS="train --model classifier --data $TESTTMP/data --batch 32 --log-every 100"
S2S="train --model seq2seq --data $TESTTMP/pairs --batch 16 --dim 16 --heads 2 --layers 1
     --dropout 0.1 --micro-steps 2 --warmup 4 --log-every 100"
GLOW="train --model glow --data $TESTTMP/data --batch 16 --flow-steps 2 --width 8 --log-every 100"

run() { # run NP RUN_DIR STEPS [more args], with $ARGS
    local np=$1 dir=$2 steps=$3
    shift 3
    timeout 300 $MPI -np "$np" "$TRAINER" $ARGS --run-dir "$dir" --steps "$steps" "$@" >"$TESTTMP/log" 2>&1 ||
        { cat "$TESTTMP/log"; return 1; }
}

for model in VAE TREE GPT LSTM GAN CLS GLOW S2S; do
    ARGS=${!model}
    R="$TESTTMP/$model"
    declare -A sum=()
    for np in 1 2 4 8; do
        run "$np" "$R/np$np" 12 || bad "$model: run at -np $np"
        sum[$np]=$(params_checksum "$R/np$np/checkpoint.h5")
    done
    for np in 2 4 8; do
        if [ -n "${sum[1]}" ] && [ "${sum[$np]}" = "${sum[1]}" ]; then
            ok "$model: -np $np equals -np 1 after 12 steps (${sum[1]})"
        else
            bad "$model: -np $np gives ${sum[$np]}, -np 1 gives ${sum[1]}"
        fi
    done
    run 1 "$R/again" 12 || bad "$model: second run at -np 1"
    again=$(params_checksum "$R/again/checkpoint.h5")
    if [ -n "$again" ] && [ "$again" = "${sum[1]}" ]; then
        ok "$model: the same run twice"
    else
        bad "$model: run twice: $again vs ${sum[1]}"
    fi
    run 1 "$R/threads3" 12 --threads 3 || bad "$model: -np 1 with 3 lane threads"
    threads3=$(params_checksum "$R/threads3/checkpoint.h5")
    if [ -n "$threads3" ] && [ "$threads3" = "${sum[1]}" ]; then
        ok "$model: 3 lane threads equal -np 1 (lanes are spread over threads too)"
    else
        bad "$model: 3 lane threads give $threads3, -np 1 gives ${sum[1]}"
    fi
    if [ $model = TREE ]; then
        run 1 "$R/banner" 1 && grep -q "reduce exact (lane tree)" "$TESTTMP/log" &&
            ok "TREE: runs in the lane tree" || bad "TREE: not run in the lane tree"
        # the narrower vector paths of the products give the same bits
        for path in avx2 scalar; do
            TRAINER_GEMM=$path run 2 "$R/$path" 12 || bad "TREE: TRAINER_GEMM=$path"
            got=$(params_checksum "$R/$path/checkpoint.h5")
            if [ -n "$got" ] && [ "$got" = "${sum[1]}" ]; then
                ok "TREE: the $path products give the same bits as the best path"
            else
                bad "TREE: TRAINER_GEMM=$path gives $got, the best path ${sum[1]}"
            fi
        done
    fi
    run 4 "$R/moved" 12 --stop-at 5 # exits 75: stopped, to be resumed
    [ "$(h5dump -a /step "$R/moved/checkpoint.h5" 2>/dev/null | sed -n 's/^ *(0): *//p')" = 5 ] ||
        bad "$model: --stop-at 5 at -np 4 left no checkpoint at step 5"
    run 2 "$R/moved" 12 --resume auto || bad "$model: resume at -np 2"
    moved=$(params_checksum "$R/moved/checkpoint.h5")
    if [ -n "$moved" ] && [ "$moved" = "${sum[1]}" ]; then
        ok "$model: stopped at step 5 at -np 4, resumed at -np 2: equals -np 1 straight"
    else
        bad "$model: -np 4 then -np 2 gives $moved, -np 1 straight gives ${sum[1]}"
    fi
done
finish
