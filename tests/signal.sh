#!/bin/bash
# Stop signals on any one rank: SIGTERM to rank 1 and SIGUSR1 to rank 0
# (each sent twice, 50 ms apart) make all ranks stop at the same step, write
# one good checkpoint and exit 75; resuming then ends with the same parameters
# as a run never interrupted.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
ARGS="train --data $TESTTMP/data --batch 32 --hidden 256,128 --steps 400 --log-every 50 --checkpoint-every 0"

timeout 300 $MPI -np 2 "$TRAINER" $ARGS --run-dir "$TESTTMP/straight" >/dev/null 2>&1 ||
    bad "uninterrupted run"
want=$(params_checksum "$TESTTMP/straight/checkpoint.h5")

for case in "TERM 1" "USR1 0"; do
    set -- $case
    sig=$1 rank=$2 dir="$TESTTMP/sig$1"
    $MPI -np 2 "$TRAINER" $ARGS --run-dir "$dir" >"$TESTTMP/log" 2>&1 &
    launcher=$!
    # the rank's process: the trainer whose environment says its rank
    pid=""
    for _ in $(seq 100); do
        for p in $(pgrep -f "bin/trainer train --data $TESTTMP/data" || true); do
            grep -qz "OMPI_COMM_WORLD_RANK=$rank" "/proc/$p/environ" 2>/dev/null && pid=$p
        done
        [ -n "$pid" ] && grep -q "^step" "$TESTTMP/log" && break
        sleep 0.1
    done
    kill -"$sig" "$pid" 2>/dev/null
    sleep 0.05
    kill -"$sig" "$pid" 2>/dev/null # an impatient second signal: the same flag again
    wait "$launcher"
    status=$?
    stopped=$(sed -n 's/^stopped by a signal at step \([0-9]*\).*/\1/p' "$TESTTMP/log")
    if [ "$status" = 75 ] && [ -n "$stopped" ] && [ "$(h5dump -a /step "$dir/checkpoint.h5" 2>/dev/null | sed -n 's/^ *(0): *//p')" = "$stopped" ]; then
        ok "SIG$sig to rank $rank: exit 75, checkpoint at step $stopped"
    else
        bad "SIG$sig to rank $rank: status $status, stopped at '$stopped'"
        tail -5 "$TESTTMP/log"
    fi
    timeout 300 $MPI -np 2 "$TRAINER" $ARGS --run-dir "$dir" --resume auto >/dev/null 2>&1 ||
        bad "resume after SIG$sig"
    got=$(params_checksum "$dir/checkpoint.h5")
    if [ -n "$want" ] && [ "$got" = "$want" ]; then
        ok "resumed after SIG$sig: same parameters as uninterrupted ($want)"
    else
        bad "resumed after SIG$sig: $got, uninterrupted $want"
    fi
done
finish
