#!/bin/bash
# The OpenBLAS kernel: exact mode gives the same bits with ranks on
# different kernels (it uses none of OpenBLAS's products), fast mode warns;
# an OPENBLAS_CORETYPE in the environment is reported, never changed; a weaker kernel than the CPU can run is replaced
# by running again; a fast-mode resume on another kernel says its bits will
# differ, an exact one ends with the bits of a run never stopped.
# Only the reported name is faked (TRAINER_FAKE_KERNEL) or the generic
# Prescott kernel forced, and only when the environment sets no
# OPENBLAS_CORETYPE of its own.
. "$(dirname "$0")/lib.sh"
# The rule the program follows, restated from /proc/cpuinfo's flags: the
# kernel OpenBLAS 0.3.21 itself picks on a CPU it knows.
best_for_cpu() {
    local f v
    f=" $(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -1) "
    v=$(sed -n 's/^vendor_id[[:space:]]*: //p' /proc/cpuinfo | head -1)
    has() { for x in "$@"; do [[ $f == *" $x "* ]] || return 1; done; }
    if has avx512f avx512bw avx512vl avx512dq avx512cd avx512_bf16; then
        has amx_bf16 && echo SapphireRapids || echo Cooperlake
    elif has avx512f avx512bw avx512vl avx512dq avx512cd; then echo SkylakeX
    elif has avx2 fma; then [ "$v" = AuthenticAMD ] && echo Zen || echo Haswell
    elif has avx; then echo Sandybridge
    elif has sse4_2; then echo Nehalem
    else echo Prescott
    fi
}
v=$("$TRAINER" --version)
want=$(best_for_cpu)
grep -q "OpenBLAS's best for it $want," <<<"$v" && ok "this CPU's best kernel is $want: $v" || bad "best kernel: expected $want: $v"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
T="train --data $TESTTMP/data --batch 32 --hidden 64,32 --steps 2 --log-every 1"
# rank 0 as it is; rank 1 on the generic Prescott kernel for real where the
# environment sets no OPENBLAS_CORETYPE (else on that one: it is left as it
# is), and saying Prescott either way
mixed() { # RUN-DIR EXTRA ARGS
    local dir=$1
    shift
    timeout 120 $MPI -np 1 "$TRAINER" $T --run-dir "$dir" "$@" : \
        -np 1 env TRAINER_FAKE_KERNEL=Prescott OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Prescott}" \
        "$TRAINER" $T --run-dir "$dir" "$@" >"$TESTTMP/out" 2>"$TESTTMP/err"
}
real=$("$TRAINER" --version | head -1 | sed 's/.*OpenBLAS kernel \([A-Za-z0-9]*\).*/\1/')
timeout 120 $MPI -np 2 "$TRAINER" $T --run-dir "$TESTTMP/one" >/dev/null 2>&1 || bad "one kernel"
one=$(params_checksum "$TESTTMP/one/checkpoint.h5")
if [ "$real" = Prescott ]; then
    echo "SKIP: this machine runs Prescott itself; mixed kernels cannot be shown"
else
    mixed "$TESTTMP/m"
    status=$?
    both=$(params_checksum "$TESTTMP/m/checkpoint.h5")
    if [ "$status" = 0 ] && ! grep -q "OpenBLAS kernels" "$TESTTMP/err" && [ -n "$one" ] && [ "$one" = "$both" ]; then
        ok "exact mode on ranks of different kernels ($real and Prescott): the bits of one kernel ($one)"
    else
        bad "mixed kernels, exact: status $status, $both against $one: $(cat "$TESTTMP/err")"
    fi
    mixed "$TESTTMP/f" --reduce fast
    status=$?
    if [ "$status" = 0 ] && grep -q "warning: the ranks run different OpenBLAS kernels" "$TESTTMP/err"; then
        ok "fast mode warns and goes on"
    else
        bad "mixed kernels, fast: status $status: $(cat "$TESTTMP/err")"
    fi
fi
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    v=$("$TRAINER" --version)
    grep -q "(OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE set by the environment)" <<<"$v" &&
        ok "the environment's OPENBLAS_CORETYPE is reported, not changed: $v" || bad "$v"
else
    v=$(OPENBLAS_CORETYPE=Prescott "$TRAINER" --version)
    grep -q "kernel Prescott (OPENBLAS_CORETYPE=Prescott set by the environment)" <<<"$v" &&
        ok "a set OPENBLAS_CORETYPE is left as it is: $v" || bad "$v"
    v=$(TRAINER_FAKE_KERNEL=Prescott "$TRAINER" --version)
    best=$(best_for_cpu)
    if [ "$best" = Prescott ] || grep -q "OpenBLAS chose Prescott for this CPU; run again with OPENBLAS_CORETYPE=$best" <<<"$v"; then
        ok "a weaker kernel than the CPU's is replaced by running again: $v"
    else
        bad "no upgrade from a (pretended) Prescott: $v"
    fi
fi
timeout 120 $MPI -np 2 "$TRAINER" $T --run-dir "$TESTTMP/r" --reduce fast >/dev/null 2>&1 || bad "2-step run"
timeout 120 $MPI -np 2 env TRAINER_FAKE_KERNEL=Prescott OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Prescott}" \
    "$TRAINER" $T --run-dir "$TESTTMP/r" --steps 3 --resume auto --reduce fast >"$TESTTMP/out" 2>&1
if grep -q "note: the checkpoint was computed with the OpenBLAS kernel $real, this run uses Prescott" "$TESTTMP/out"; then
    ok "a fast-mode resume on another kernel says so: $(grep '^note:' "$TESTTMP/out" | cut -c1-100)..."
else
    bad "resume on another kernel: $(head -5 "$TESTTMP/out")"
fi
timeout 120 $MPI -np 2 "$TRAINER" $T --run-dir "$TESTTMP/e" --stop-at 1 >/dev/null 2>&1
timeout 120 $MPI -np 2 env TRAINER_FAKE_KERNEL=Prescott OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Prescott}" \
    "$TRAINER" $T --run-dir "$TESTTMP/e" --resume auto >"$TESTTMP/out" 2>&1
resumed=$(params_checksum "$TESTTMP/e/checkpoint.h5")
if ! grep -q "^note: the checkpoint was computed" "$TESTTMP/out" && [ -n "$one" ] && [ "$resumed" = "$one" ]; then
    ok "an exact resume on another kernel: no note, and the bits of a run never stopped ($resumed)"
else
    bad "exact resume on another kernel: $resumed against $one: $(grep -m2 'note\|trainer:' "$TESTTMP/out")"
fi
finish
