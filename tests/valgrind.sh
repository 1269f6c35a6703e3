#!/bin/bash
# valgrind memcheck: no invalid access, no use of uninitialised values, and
# no definitely lost block, on every command's --help, on bad-input paths,
# and on short -np 1 training, evaluation and sampling runs. Memory the
# libraries keep until exit is left out by tests/valgrind.supp (Open MPI's
# own file too); anything with our code on its stack is reported.
. "$(dirname "$0")/lib.sh"
if [ "${SANITIZERS:-no}" != no ]; then
    echo "SKIP: valgrind and the sanitizers do not mix; the normal build runs this"
    exit 77
fi
if ! command -v valgrind >/dev/null; then
    echo "FAIL: valgrind is not installed (jobs/install-deps.sh installs it)"
    exit 1
fi
SRC=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --keep-debuginfo=yes --num-callers=40
    --suppressions=/usr/share/openmpi/openmpi-valgrind.supp --suppressions="$SRC/tests/valgrind.supp")
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
make_synthetic_text || { bad "synthetic text"; finish; exit 1; }

# memcheck NAME EXPECTED_STATUS ARGS...
memcheck() {
    local name=$1 want=$2
    shift 2
    timeout 600 "${VG[@]}" "$TRAINER" "$@" >"$TESTTMP/out" 2>"$TESTTMP/vg"
    local status=$?
    local summary
    summary=$(grep -E 'ERROR SUMMARY' "$TESTTMP/vg" | sed 's/^==[0-9]*== //')
    if [ "$status" = "$want" ] && grep -q 'ERROR SUMMARY: 0 errors' "$TESTTMP/vg"; then
        ok "$name (status $status): $summary"
    else
        bad "$name: status $status (expected $want): $summary"
        grep -E -A20 'Invalid|uninitialised|definitely lost in' "$TESTTMP/vg" | head -40
    fi
}

D="$TESTTMP/data"
VAE="train --data $D --batch 32 --hidden 64,32 --log-every 1"
GPT="train --model gpt --data $TESTTMP/text --layers 1 --dim 32 --heads 2 --ctx 16 --batch 16
     --micro-steps 2 --dropout 0.1 --val-windows 8 --log-every 1"
for args in "--help" "--version" "train --help" "eval --help" "sample --help" "prepare --help"; do
    memcheck "trainer $args" 0 $args
done
memcheck "unknown option" 2 $VAE --bogus 1
memcheck "learning rate not a number" 2 $VAE --lr fast
memcheck "a gpt option given to the vae" 2 $VAE --heads 4
memcheck "missing config file" 2 $VAE --config "$TESTTMP/none.conf"
memcheck "no data folder" 2 $VAE --data "$TESTTMP/nowhere"
memcheck "eval without a checkpoint" 2 eval --data "$D"
memcheck "prepare reading a folder" 2 prepare --source text --input "$TESTTMP" --out "$TESTTMP/p"
memcheck "VAE: 3 steps at -np 1" 0 $VAE --steps 3 --run-dir "$TESTTMP/v" --threads 2
memcheck "VAE: resumed to step 4, --reduce fast" 0 $VAE --steps 4 --run-dir "$TESTTMP/v" --resume auto --reduce fast
memcheck "VAE: eval" 0 eval --checkpoint "$TESTTMP/v/checkpoint.h5" --data "$D"
memcheck "GPT: 2 steps at -np 1" 0 $GPT --steps 2 --run-dir "$TESTTMP/g" --threads 2
memcheck "GPT: sample" 0 sample --checkpoint "$TESTTMP/g/checkpoint.h5" --length 20 --top-k 5
cp "$TESTTMP/v/checkpoint.h5" "$TESTTMP/damaged.h5"
"$TOP_BUILDDIR/tests/make_data" poke "$TESTTMP/damaged.h5" /adam_m/dec.fc1.bias 3 nan
memcheck "resume from a damaged checkpoint" 2 $VAE --steps 5 --run-dir "$TESTTMP/v2" --resume "$TESTTMP/damaged.h5"
finish
