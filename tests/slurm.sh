#!/bin/bash
# The Slurm jobs against a real Slurm: installs slurm-wlm and munge if they
# are missing, starts munged, slurmctld and slurmd on this machine (a single
# node advertising 8 CPUs), then
#   1. submits jobs/vae.sbatch with 4 tasks and checks its output and checkpoint;
#   2. submits it again, signals it mid-run (twice, as a preemption warning
#      and an impatient second one), checks that it checkpointed, requeued,
#      resumed and ended with the same parameters as job 1;
#   3. submits it again and sends SIGTERM to all its processes (scancel,
#      preemption), then resubmits it: same parameters as job 1 again;
# and stops the daemons. Needs root; skipped (77) otherwise.
. "$(dirname "$0")/lib.sh"
SRC=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRC/tests/slurm/jobs.sh"
slurm_test_start "the Slurm test"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
C="$TESTTMP/cluster"
stop_cluster() { "$SRC/tests/slurm/cluster.sh" stop "$C" || true; rm -rf "$TESTTMP"; }
trap stop_cluster EXIT
eval "$("$SRC/tests/slurm/cluster.sh" start "$C")" || { bad "start Slurm"; finish; exit 1; }
ok "slurmctld and slurmd up: $(sinfo -h -o '%P %a %D %T %c CPUs')"

small_vae_conf "$TESTTMP/vae.conf"
export CONFIG="$TESTTMP/vae.conf" TRAINER="$TRAINER"

submit() { sbatch_job "$1" vae.sbatch --ntasks=4; }

# 1. a plain run
a=$(submit vae-a) || { bad "sbatch"; finish; exit 1; }
squeue
if wait_state "$a" COMPLETED 300; then
    ok "job $a (4 tasks) completed"
else
    bad "job $a ended as $(job_state "$a")"
    cat "$TESTTMP"/vae-a-*.out
fi
out_a=$(ls "$TESTTMP"/vae-a-*.out)
grep -q "train vae on 4 rank(s)" "$out_a" && grep -q "final: step 300" "$out_a" &&
    ok "job output: $(grep '^final:' "$out_a")" || bad "job output lacks the final line"
ck_a="$TESTTMP/runs/vae-a/checkpoint.h5"
[ "$(step_of "$ck_a")" = 300 ] && ok "checkpoint at step 300, params $(params_checksum "$ck_a")" ||
    bad "checkpoint step: $(step_of "$ck_a")"

# 2. the same job, signalled mid-run
b=$(submit vae-b) || { bad "sbatch"; finish; exit 1; }
out_b="$TESTTMP/vae-b-$b.out"
preempt "$b" "$out_b"
requeued=$?
echo "after the signal:"
squeue
scontrol show job "$b" | grep -E 'JobState|Restarts'
if [ "$requeued" = 0 ]; then
    ok "job $b checkpointed and requeued itself: $(grep -m1 '^stopped by a signal' "$out_b")"
else
    bad "job $b did not requeue"
    cat "$out_b"
fi
release_requeued "$b" "$out_b"
if wait_state "$b" COMPLETED 300; then
    ok "job $b completed after its restart"
else
    bad "job $b ended as $(job_state "$b")"
    cat "$out_b"
fi
grep -q "^resumed from .* at step" "$out_b" && ok "restart $(grep '^resumed from' "$out_b")" ||
    bad "the restart did not resume"
ck_b="$TESTTMP/runs/vae-b/checkpoint.h5"
if [ -n "$(params_checksum "$ck_a")" ] && [ "$(params_checksum "$ck_b")" = "$(params_checksum "$ck_a")" ]; then
    ok "preempted-and-resumed job ends with the same parameters as the plain one ($(params_checksum "$ck_b"))"
else
    bad "parameters differ: plain $(params_checksum "$ck_a"), preempted $(params_checksum "$ck_b")"
fi
# 3. the same job, cancelled with SIGTERM to every process (as scancel and
#    preemption do): it keeps a good checkpoint, does not requeue itself,
#    and a resubmission resumes and ends like job 1
c=$(submit vae-c) || { bad "sbatch"; finish; exit 1; }
out_c="$TESTTMP/vae-c-$c.out"
wait_line "$out_c" "^step *100/" 60
scancel --signal=TERM --full "$c"
for _ in $(seq 300); do
    case "$(job_state "$c")" in RUNNING | COMPLETING | PENDING | "") sleep 0.2 ;; *) break ;; esac
done
ck_c="$TESTTMP/runs/vae-c/checkpoint.h5"
if grep -q "stopped by SIGTERM" "$out_c" && [ "$(step_of "$ck_c")" -ge 100 ] 2>/dev/null; then
    ok "job $c, SIGTERM to every process: ended $(job_state "$c") with a checkpoint at step $(step_of "$ck_c")"
else
    bad "job $c after SIGTERM: state $(job_state "$c"), checkpoint step '$(step_of "$ck_c")'"
    cat "$out_c"
fi
c2=$(submit vae-c) || bad "resubmit"
if wait_state "$c2" COMPLETED 300 && [ "$(params_checksum "$ck_c")" = "$(params_checksum "$ck_a")" ]; then
    ok "resubmitted job $c2 resumed and ended with job 1's parameters"
else
    bad "resubmitted job $c2: $(job_state "$c2"), params $(params_checksum "$ck_c")"
fi

echo "--- job $b, as Slurm recorded it (jobcomp) ---"
grep "JobId=$b " "$C/log/jobcomp.log" | sed 's/ReservationName.*SubmitTime/... SubmitTime/'
echo "--- job $b output ---"
grep -vE '^config: ' "$out_b" | grep -vE '^-{20}|^ *$' | head -40
finish
