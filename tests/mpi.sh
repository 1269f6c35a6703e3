#!/bin/bash
# The MPI Check suites under mpirun -np 1, 2 and 4 (comm) and -np 1 and 2
# (whole training runs), each bounded in time so that a hang fails.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
make_synthetic_text || { bad "synthetic text"; finish; exit 1; }
export TRAINER_TEST_DATA="$TESTTMP/data" TRAINER_TEST_TEXT="$TESTTMP/text" TRAINER_TEST_RUNS="$TESTTMP/runs"
declare -A sums
for np in 1 2 4; do
    if out=$(timeout 120 $MPI -np "$np" "$TOP_BUILDDIR/tests/test_comm" 2>&1); then
        ok "test_comm -np $np"
    else
        bad "test_comm -np $np"
    fi
    echo "$out" | grep -E '^[0-9]+%: Checks|^.*:[A-Z]:' || true
    sums[$np]=$(echo "$out" | sed -n 's/^lane-sum fnv1a64: //p')
done
if [ -n "${sums[1]}" ] && [ "${sums[1]}" = "${sums[2]}" ] && [ "${sums[1]}" = "${sums[4]}" ]; then
    ok "lane sums identical for -np 1, 2, 4 (${sums[1]})"
else
    bad "lane sums differ across -np: 1=${sums[1]} 2=${sums[2]} 4=${sums[4]}"
fi
declare -A trained
for np in 1 2; do
    if out=$(timeout 300 $MPI -np "$np" "$TOP_BUILDDIR/tests/test_train" 2>&1); then
        ok "test_train -np $np"
    else
        bad "test_train -np $np"
        echo "$out" | tail -20
    fi
    echo "$out" | grep -E '^[0-9]+%: Checks|^.*:[A-Z]:' || true
    trained[$np]=$(echo "$out" | grep '20-step fnv1a64' | tr '\n' ' ')
done
# each model's 20-step parameters, the test-only one too: the same at -np 1 and 2
if [ -n "${trained[1]}" ] && [ "${trained[1]}" = "${trained[2]}" ]; then
    ok "test_train runs identical at -np 1 and 2: ${trained[1]}"
else
    bad "test_train runs differ: -np 1: ${trained[1]}; -np 2: ${trained[2]}"
fi
finish
