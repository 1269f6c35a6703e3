# The body of every sbatch job in jobs/: sourced with CONFIG set.
#
# Runs `trainer train` with mpirun inside the allocation (Debian's Open MPI
# reads the allocation from Slurm's environment), in runs/$SLURM_JOB_NAME,
# resuming from that folder's checkpoint if there is one. A stop signal (USR1
# from --signal, TERM from scancel or preemption) is passed to the ranks,
# which agree on a step, write a checkpoint and exit with status 75; then the
# job requeues itself and the next start resumes.
set -uo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
TRAINER=${TRAINER:-build/bin/trainer}
RUN_DIR=${RUN_DIR:-runs/${SLURM_JOB_NAME:-job}}
NTASKS=${SLURM_NTASKS:-1}
mkdir -p "$RUN_DIR"
. jobs/env.sh

echo "job ${SLURM_JOB_ID:-?} start $(( ${SLURM_RESTART_COUNT:-0} + 1 )) on ${SLURM_JOB_NODELIST:-$(hostname)}:" \
    "$NTASKS tasks, config $CONFIG, run folder $RUN_DIR, $(date -u +%FT%TZ)"
mpirun -np "$NTASKS" $MPI_FLAGS "$TRAINER" train --config "$CONFIG" \
    --run-dir "$RUN_DIR" --resume auto ${TRAIN_ARGS:-} &
pid=$!
got=""
forward() { got=$1; kill -USR1 "$pid" 2>/dev/null; }
trap 'forward USR1' USR1
trap 'forward TERM' TERM
trap 'forward INT' INT
# A trapped signal ends `wait` early (status 128+n) even when mpirun is still
# running, or exits just then: wait until it is gone, then ask bash for its
# own status, which it keeps for an exited child.
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"
done
wait "$pid"
status=$?
# from here on a late signal must not end the script before it requeues
trap '' USR1 TERM INT
echo "job ${SLURM_JOB_ID:-?}: trainer exited with status $status, $(date -u +%FT%TZ)"
if [ "$status" = 75 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    echo "job $SLURM_JOB_ID: checkpoint written; requeueing"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
if [ "$got" = TERM ] || [ "$got" = INT ]; then
    # scancel or preemption: Slurm signalled every process, mpirun too, and
    # mpirun ends the job itself (its status is not the ranks'); the ranks
    # had the signal as well and wrote their checkpoint at the next step.
    # No requeue from here: a preempting Slurm requeues by itself, and a
    # cancelled job should stay cancelled. Resubmitting resumes.
    echo "job ${SLURM_JOB_ID:-?}: stopped by SIG$got; the checkpoint in $RUN_DIR is kept"
    exit 143
fi
exit "$status"
