#!/bin/bash
# Word-level tokens end to end, on the synthetic verse-like text: prepare
# with a small vocabulary, train the LSTM and the GPT on word ids, read the
# validation figures (nats per token, perplexity, bits per byte, unknown
# share), sample words from a checkpoint the same way twice, and refuse to
# mix a word checkpoint with byte shards.
. "$(dirname "$0")/lib.sh"
"$TOP_BUILDDIR/tests/make_data" text "$TESTTMP/text.txt" || { bad "synthetic text"; finish; exit 1; }
W="$TESTTMP/words"
if out=$("$TRAINER" prepare --source text --tokens words --vocab 60 --input "$TESTTMP/text.txt" \
    --out "$W" --shards 8 2>&1) && grep -q "vocabulary 60 (<unk> included)" <<<"$out"; then
    ok "prepare --tokens words: $(head -1 <<<"$out")"
else
    bad "prepare --tokens words: $out"
fi
if h5dump -H -d /tokens "$W/train-000.h5" 2>/dev/null | grep -q H5T_STD_U16LE &&
    h5ls "$W/val-003.h5" | grep -q '^vocab' && h5ls "$W/val-003.h5" | grep -q '^token_bytes'; then
    ok "word shards hold uint16 ids, token_bytes and the vocabulary"
else
    bad "word shards lack uint16 tokens, token_bytes or vocab"
fi
LM="--data $W --ctx 16 --batch 16 --val-windows 16 --eval-every 0 --log-every 100 --warmup 2"
run() { # NAME RUN_DIR ARGS...
    local name=$1 dir=$2
    shift 2
    timeout 300 $MPI -np 2 "$TRAINER" train $LM --run-dir "$dir" "$@" >"$TESTTMP/log" 2>&1
    local status=$?
    final=$(grep '^final:' "$TESTTMP/log")
    first=$(grep -m1 '^step' "$TESTTMP/log" | sed -n 's/.*loss *\([0-9.]*\) nats.*/\1/p')
    if [ "$status" = 0 ] && grep -q 'nats/token (perplexity [0-9.]*, [0-9.]* bits/byte, [0-9.]*% unknown)' <<<"$final"; then
        ok "$name: $final"
    else
        bad "$name: status $status: $(tail -3 "$TESTTMP/log")"
    fi
}
run "LSTM on words, -np 2" "$TESTTMP/lstm" --model lstm --layers 1 --embed 16 --dim 32 --steps 40 --lr 1e-2 --log-every 1
last=$(grep '^step' "$TESTTMP/log" | tail -1 | sed -n 's/.*loss *\([0-9.]*\) nats.*/\1/p')
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.7 * a) }'; then
    ok "the LSTM's word loss fell: $first -> $last nats/token"
else
    bad "the LSTM's word loss did not fall enough: $first -> $last"
fi
run "GPT on words, -np 2" "$TESTTMP/gpt" --model gpt --layers 1 --dim 32 --heads 2 --steps 10
S="sample --checkpoint $TESTTMP/lstm/checkpoint.h5 --prompt And_God --length 20 --seed 5 --top-k 10"
a=$("$TRAINER" $S 2>"$TESTTMP/rate") && b=$("$TRAINER" $S 2>/dev/null) # stderr: the rate
if [ -n "$a" ] && [ "$a" = "$b" ] && grep -q ' ' <<<"$a"; then
    ok "word samples are the same for a seed: $(head -c 80 <<<"$a" | tr '\n' '/')"
else
    bad "word samples: \"$a\" vs \"$b\""
fi
"$TRAINER" prepare --source text --input "$TESTTMP/text.txt" --out "$TESTTMP/bytes" --shards 8 >/dev/null
if ! timeout 60 $MPI -np 2 "$TRAINER" train $LM --data "$TESTTMP/bytes" --run-dir "$TESTTMP/lstm" \
    --resume auto --steps 50 --model lstm --layers 1 --embed 16 --dim 32 >"$TESTTMP/log" 2>"$TESTTMP/err" &&
    grep -q "the checkpoint's vocabulary .* is not the one of the shards" "$TESTTMP/err"; then
    ok "a word checkpoint on byte shards is refused: $(grep -m1 '^trainer:' "$TESTTMP/err")"
else
    bad "a word checkpoint on byte shards: $(cat "$TESTTMP/err")"
fi
finish
