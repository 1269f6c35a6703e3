#!/bin/bash
# Bitwise reproducibility (--reduce exact, the default): the parameters after
# N steps are the same bits for -np 1, 2, 4 and 8, for a run stopped at -np 4
# and resumed at -np 2, and for the same run twice.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
D="$TESTTMP/data"
ARGS="train --data $D --batch 32 --hidden 64,32 --latent 8 --log-every 100"

run() { # run NP RUN_DIR STEPS [more args]
    local np=$1 dir=$2 steps=$3
    shift 3
    timeout 300 $MPI -np "$np" "$TRAINER" $ARGS --run-dir "$dir" --steps "$steps" "$@" >"$TESTTMP/log" 2>&1 ||
        { cat "$TESTTMP/log"; return 1; }
}

for np in 1 2 4 8; do
    run "$np" "$TESTTMP/np$np" 12 || bad "run at -np $np"
    sum[$np]=$(params_checksum "$TESTTMP/np$np/checkpoint.h5")
done
run 1 "$TESTTMP/again" 12 || bad "second run at -np 1"
again=$(params_checksum "$TESTTMP/again/checkpoint.h5")
for np in 2 4 8; do
    if [ -n "${sum[1]}" ] && [ "${sum[$np]}" = "${sum[1]}" ]; then
        ok "-np $np equals -np 1 after 12 steps (${sum[1]})"
    else
        bad "-np $np gives ${sum[$np]}, -np 1 gives ${sum[1]}"
    fi
done
if [ -n "$again" ] && [ "$again" = "${sum[1]}" ]; then ok "the same run twice"; else bad "run twice: $again vs ${sum[1]}"; fi

run 4 "$TESTTMP/moved" 5 || bad "first part at -np 4"
run 2 "$TESTTMP/moved" 12 --resume auto || bad "resume at -np 2"
moved=$(params_checksum "$TESTTMP/moved/checkpoint.h5")
if [ -n "$moved" ] && [ "$moved" = "${sum[1]}" ]; then
    ok "stopped at step 5 at -np 4, resumed at -np 2: equals -np 1 straight"
else
    bad "-np 4 then -np 2 gives $moved, -np 1 straight gives ${sum[1]}"
fi
finish
