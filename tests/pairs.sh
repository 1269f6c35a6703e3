#!/bin/bash
# Translation pairs end to end on two synthetic texts shaped as diatheke
# prints Bibles: references with spaces in book names and leading blanks,
# blank lines, section titles repeated before verses, markup (<G5547>) and
# pilcrows to strip, a verse empty in one text and one missing: prepare
# --source parallel pairs them by reference, splits every 50th pair from the
# 8th into validation, learns the BPE, writes the same bytes twice, and
# inspect decodes the pairs back to the cleaned text; bad input is refused.
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
finish
