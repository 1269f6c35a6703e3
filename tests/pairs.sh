#!/bin/bash
# Translation pairs end to end on two synthetic texts shaped as diatheke
# prints Bibles: references with spaces in book names and leading blanks,
# blank lines, section titles repeated before verses, markup (<G5547>) and
# pilcrows to strip, a verse empty in one text and one missing: prepare
# --source parallel pairs them by reference, splits every 50th pair from the
# 8th into validation, learns the BPE, writes the same bytes twice, and
# inspect decodes the pairs back to the cleaned text; bad input is refused.
# Then a small encoder-decoder trains on synthetic pairs under -np 2, its
# evaluation reports nats per token, bits per byte and chrF, and translate
# gives the same text twice, greedy and with a beam.
. "$(dirname "$0")/lib.sh"
T="$TESTTMP/texts"
mkdir -p "$T"
# 3 books x 40 verses; English verse 2:5 empty, Spanish 3:9 missing, Spanish
# markup in every third verse (38 of them)
awk 'BEGIN {
    split("Genesis|1 Kings|Song of Solomon", book, "|");
    for (b = 1; b <= 3; b++) for (v = 1; v <= 40; v++) {
        if (v % 10 == 1) print "A Psalm of David.";
        if (v % 7 == 0) print "";
        lead = v % 5 == 0 ? "   " : "";
        text = (b == 2 && v == 5) ? "" : "\302\266 And the light of day " v " was good, and it was so in " book[b] ".";
        print lead book[b] " " b ":" v ": " text "  ";
    }
    print "(engTest)";
}' >"$T/en.txt"
awk 'BEGIN {
    split("Genesis|1 Kings|Song of Solomon", book, "|");
    for (b = 1; b <= 3; b++) for (v = 1; v <= 40; v++) {
        if (b == 3 && v == 9) continue;
        mark = v % 3 == 0 ? " <G5547>" : "";
        print book[b] " " b ":" v ": Y la luz del d\303\255a " v mark " era buena, y fu\303\251 as\303\255 en " book[b] ".";
    }
    print "(spaTest)";
}' >"$T/es.txt"
P=(prepare --source parallel --input "$T/en.txt" --target "$T/es.txt" --vocab 400 --shards 2)
if out=$("$TRAINER" "${P[@]}" --out "$TESTTMP/p1" 2>&1) &&
    grep -q "^prepare: 120 verses in .*, 119 in .* (markup stripped from 0 and 38, 12 and 0 title lines skipped); 118 pairs by reference, 2 verses" <<<"$out"; then
    ok "prepare --source parallel: $(head -1 <<<"$out")"
else
    bad "prepare --source parallel: $out"
fi
grep -q "^prepare: 115 train pairs" <<<"$out" && grep -q "^prepare: 3 val pairs" <<<"$out" &&
    ok "every 50th pair from the 8th is validation: 115 train, 3 val" || bad "splits: $out"
"$TRAINER" "${P[@]}" --out "$TESTTMP/p2" >/dev/null 2>&1
same=1
for f in "$TESTTMP"/p1/*.h5; do
    cmp -s "$f" "$TESTTMP/p2/$(basename "$f")" || same=0
done
[ $same = 1 ] && ok "the same texts give byte-identical pair shards (the same merges)" ||
    bad "pair shards differ between two runs"
out=$("$TRAINER" inspect "$TESTTMP/p1/val-000.h5" 2>&1)
# pair 7 (0-based) is Genesis 1:8 (verse 2:5 is not paired, it comes later)
if grep -q "^Genesis 1:8 (" <<<"$out" &&
    grep -qx "  And the light of day 8 was good, and it was so in Genesis." <<<"$out" &&
    grep -qx "  Y la luz del día 8 era buena, y fué así en Genesis." <<<"$out"; then
    ok "inspect decodes a validation pair to the cleaned text (no pilcrow, spaces, markup)"
else
    bad "inspect: $out"
fi
out=$("$TRAINER" inspect "$TESTTMP/p1/val-001.h5" 2>&1)
grep -q "^1 Kings 2:19 (" <<<"$out" && grep -q "^Song of Solomon 3:30 (" <<<"$out" &&
    ok "book names with spaces keep their references" || bad "references of Song of Solomon"
out=$("$TRAINER" prepare --source parallel --input "$T/en.txt" --out "$TESTTMP/p3" 2>&1)
[ $? != 0 ] && grep -q "give the second text with --target" <<<"$out" &&
    ok "no --target: $out" || bad "no --target: $out"
printf 'no verses here\n' >"$T/none.txt"
out=$("$TRAINER" prepare --source parallel --input "$T/none.txt" --target "$T/es.txt" --out "$TESTTMP/p4" 2>&1)
[ $? != 0 ] && grep -q "none.txt: no verses" <<<"$out" && ok "a text without verses: $out" ||
    bad "a text without verses: $out"
make_synthetic_pairs || { bad "synthetic pairs"; finish; exit 1; }
S2S=(train --model seq2seq --data "$TESTTMP/pairs" --batch 16 --dim 32 --heads 2 --layers 1
    --lr 3e-3 --warmup 10 --steps 60 --log-every 30 --eval-every 0 --chrf-pairs 8)
if timeout 300 $MPI -np 2 "$TRAINER" "${S2S[@]}" --run-dir "$TESTTMP/s2s" >"$TESTTMP/log" 2>&1 &&
    grep -q "^final: .*validation loss [0-9.]* nats/token (perplexity [0-9.]*, [0-9.]* bits/byte" "$TESTTMP/log" &&
    grep -q "^chrF [0-9.]* over the first 8 validation pairs (beam 1" "$TESTTMP/log"; then
    first=$(grep -m1 '^step' "$TESTTMP/log" | sed -n 's/.*loss *\([0-9.]*\) nats.*/\1/p')
    ok "seq2seq trains: loss $first at step 30, $(grep '^chrF' "$TESTTMP/log")"
else
    bad "seq2seq: $(tail -3 "$TESTTMP/log")"
fi
awk -v a="$(grep -m1 '^step' "$TESTTMP/log" | sed -n 's/.*loss *\([0-9.]*\) nats.*/\1/p')" \
    'BEGIN { exit !(a < 5.5) }' && ok "the loss fell below 5.5 nats/token (ln 400 = 5.99)" ||
    bad "seq2seq loss did not fall: $(grep '^step' "$TESTTMP/log")"
C="$TESTTMP/s2s/checkpoint.h5"
a=$("$TRAINER" translate --checkpoint "$C" "And the light was good 2 times in day 7." 2>/dev/null)
b=$("$TRAINER" translate --checkpoint "$C" --text "And the light was good 2 times in day 7." 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "translate, twice the same: \"$a\"" || bad "translate: \"$a\" then \"$b\""
printf 'And the water was good 1 times in day 3.\nAnd the people was good 4 times in day 9.\n' >"$TESTTMP/lines.txt"
n=$("$TRAINER" translate --checkpoint "$C" --lines "$TESTTMP/lines.txt" --beam 4 2>/dev/null | wc -l)
[ "$n" = 2 ] && ok "translate --lines with --beam 4: a line for each line" || bad "translate --lines: $n lines"
out=$("$TRAINER" eval --checkpoint "$C" 2>&1)
grep -q "^chrF" <<<"$out" && ok "eval reports chrF: $(grep '^chrF' <<<"$out")" || bad "eval: $out"
out=$("$TRAINER" translate --checkpoint "$C" 2>&1)
[ $? != 0 ] && [ "$(grep -c '^trainer: ' <<<"$out")" = 1 ] && grep -q "give a sentence" <<<"$out" &&
    ok "translate without a sentence: $(grep '^trainer: ' <<<"$out")" || bad "translate without a sentence: $out"
make_synthetic_data && timeout 120 $MPI -np 1 "$TRAINER" train --data "$TESTTMP/data" --steps 2 --batch 16 \
    --hidden 16 --latent 4 --run-dir "$TESTTMP/vae" >/dev/null 2>&1
out=$("$TRAINER" translate --checkpoint "$TESTTMP/vae/checkpoint.h5" "a verse" 2>&1)
[ $? != 0 ] && [ "$(grep -c '^trainer: ' <<<"$out")" = 1 ] && grep -q "seq2seq" <<<"$out" &&
    ok "translate with a VAE checkpoint: $(grep '^trainer: ' <<<"$out")" || bad "translate with a VAE: $out"
finish
