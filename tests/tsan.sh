#!/bin/bash
# ThreadSanitizer on the lane thread pool and the exact reduction: in a tree
# configured with --enable-sanitizers=thread, -np 1 runs with more lane
# threads than cores (VAE and GPT, and a resume, which takes the reduction's
# first-step path again), every finding fatal (exit 66).
. "$(dirname "$0")/lib.sh"
if [ "${SANITIZERS:-no}" != thread ]; then
    echo "SKIP: needs a tree configured with --enable-sanitizers=thread"
    exit 77
fi
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
make_synthetic_text || { bad "synthetic text"; finish; exit 1; }
tsan_run() { # NAME ARGS...
    local name=$1
    shift
    if timeout 600 "$TRAINER" train "$@" --log-every 100 >"$TESTTMP/log" 2>&1; then
        ok "$name: no race reported ($(grep -c 'ThreadSanitizer' "$TESTTMP/log") reports)"
    else
        bad "$name: status $?"
        grep -A30 'WARNING: ThreadSanitizer' "$TESTTMP/log" | head -60
    fi
}
VAE="--data $TESTTMP/data --batch 32 --hidden 64,32 --threads 3"
tsan_run "VAE, 3 lane threads, 4 steps" $VAE --steps 4 --run-dir "$TESTTMP/v"
tsan_run "VAE, resumed with 4 lane threads" $VAE --steps 6 --threads 4 --run-dir "$TESTTMP/v" --resume auto
tsan_run "GPT with dropout and micro-steps, 3 lane threads" --model gpt --data "$TESTTMP/text" \
    --layers 1 --dim 32 --heads 2 --ctx 16 --batch 16 --micro-steps 2 --dropout 0.1 \
    --val-windows 8 --steps 3 --threads 3 --run-dir "$TESTTMP/g"
tsan_run "LSTM, a thread's lanes in one call, 3 lane threads" --model lstm --data "$TESTTMP/text" \
    --layers 2 --embed 8 --dim 16 --ctx 16 --batch 16 --dropout 0.1 --val-windows 8 --steps 3 \
    --threads 3 --run-dir "$TESTTMP/l"
tsan_run "GAN, two phases, 3 lane threads" --model gan --data "$TESTTMP/data" --batch 32 --latent 8 \
    --steps 3 --threads 3 --run-dir "$TESTTMP/n"
finish
