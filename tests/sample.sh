#!/bin/bash
# Sampling a byte GPT with the key/value cache and checked guesses: the
# checkpoint holds a guess table (/draft) of lane 0's training text, the
# text sampled is the same with guesses (--lookahead 7) and without (0)
# while the guesses save model calls, and a damaged table is refused with
# one line, as any damaged part of a checkpoint.
. "$(dirname "$0")/lib.sh"
make_synthetic_text || { bad "synthetic text"; finish; exit 1; }
timeout 300 $MPI -np 2 "$TRAINER" train --model gpt --data "$TESTTMP/text" --layers 2 --dim 32 --heads 2 \
    --ctx 64 --batch 16 --lr 3e-3 --steps 60 --val-windows 16 --eval-every 0 --log-every 100 \
    --run-dir "$TESTTMP/g" >"$TESTTMP/log" 2>&1 || bad "training: $(tail -3 "$TESTTMP/log")"
C="$TESTTMP/g/checkpoint.h5"
if "$TRAINER" inspect "$C" | grep -q "/draft ok"; then
    ok "the checkpoint holds a guess table: $(h5ls "$C" | grep '^draft')"
else
    bad "no guess table: $("$TRAINER" inspect "$C" | grep checksums)"
fi
S="sample --checkpoint $C --prompt And --length 60 --temperature 0.8 --top-k 20 --seed 3"
a=$("$TRAINER" $S --lookahead 0 2>"$TESTTMP/a.err") && b=$("$TRAINER" $S 2>"$TESTTMP/b.err")
calls() { sed -n 's/.*(\([0-9]*\) model calls).*/\1/p' "$1"; }
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$(calls "$TESTTMP/a.err")" = 60 ] &&
    [ "$(calls "$TESTTMP/b.err")" -lt 60 ]; then
    ok "the same text with and without guesses, $(calls "$TESTTMP/b.err") model calls instead of 60: $(head -c 60 <<<"$b" | tr '\n' '/')"
else
    bad "guesses: \"$a\" ($(cat "$TESTTMP/a.err")) vs \"$b\" ($(cat "$TESTTMP/b.err"))"
fi
cp "$C" "$TESTTMP/bad.h5"
"$TOP_BUILDDIR/tests/make_data" poke "$TESTTMP/bad.h5" /draft 40 7
if ! out=$("$TRAINER" sample --checkpoint "$TESTTMP/bad.h5" --length 5 2>&1 >/dev/null) &&
    [ "$(grep -c . <<<"$out")" = 1 ] && grep -q "/draft is unreadable or its checksum does not match" <<<"$out"; then
    ok "a damaged guess table is refused: $out"
else
    bad "a damaged guess table: $out"
fi
finish
