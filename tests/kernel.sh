#!/bin/bash
# The OpenBLAS kernel: ranks on different kernels are refused in exact mode
# and warned about in fast mode; an OPENBLAS_CORETYPE in the environment is
# reported, never changed; a weaker kernel than the CPU can run is replaced
# by running again; a resume on another kernel says its bits will differ.
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
mixed() { # EXTRA ARGS: rank 0 as it is, rank 1 pretending the Prescott kernel
    timeout 120 $MPI -np 1 "$TRAINER" $T --run-dir "$TESTTMP/m" "$@" : \
        -np 1 env TRAINER_FAKE_KERNEL=Prescott "$TRAINER" $T --run-dir "$TESTTMP/m" "$@" \
        >"$TESTTMP/out" 2>"$TESTTMP/err"
}
real=$("$TRAINER" --version | head -1 | sed 's/.*OpenBLAS kernel \([A-Za-z0-9]*\).*/\1/')
if [ "$real" = Prescott ]; then
    echo "SKIP: this machine runs Prescott itself; mixed kernels cannot be shown"
else
    mixed
    status=$?
    if [ "$status" != 0 ] && [ "$status" -lt 128 ] && [ "$(grep -c '^trainer: ' "$TESTTMP/err")" = 1 ] &&
        grep -q "refused: the ranks run different OpenBLAS kernels (rank 0: $real)" "$TESTTMP/err"; then
        ok "exact mode refuses ranks on different kernels (status $status): $(cat "$TESTTMP/err")"
    else
        bad "mixed kernels, exact: status $status: $(cat "$TESTTMP/err")"
    fi
    mixed --reduce fast
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
timeout 120 $MPI -np 2 "$TRAINER" $T --run-dir "$TESTTMP/r" >/dev/null 2>&1 || bad "2-step run"
timeout 120 $MPI -np 2 env TRAINER_FAKE_KERNEL=Prescott OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Prescott}" \
    "$TRAINER" $T --run-dir "$TESTTMP/r" --steps 3 --resume auto >"$TESTTMP/out" 2>&1
if grep -q "note: the checkpoint was computed with the OpenBLAS kernel $real, this run uses Prescott" "$TESTTMP/out"; then
    ok "a resume on another kernel says so: $(grep '^note:' "$TESTTMP/out" | cut -c1-100)..."
else
    bad "resume on another kernel: $(head -5 "$TESTTMP/out")"
fi
finish
