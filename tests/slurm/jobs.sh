# Shared by the Slurm tests (sourced after tests/lib.sh): installing Slurm,
# submitting the project's own job scripts and following their jobs.

# slurm_test_start WHAT: skips (77) unless root, in the normal build (the
# sanitizer builds leave the job scripts and daemons to it), then installs
# slurm-wlm and munge when missing.
slurm_test_start() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: $1 starts daemons (and makes hosts): it needs root"
        exit 77
    fi
    if [ "${SANITIZERS:-no}" != no ]; then
        echo "SKIP: $1 checks the job scripts; the normal build runs it"
        exit 77
    fi
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
    echo "installing slurm-wlm and munge"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
        { bad "apt-get install slurm-wlm munge"; finish; exit 1; }
}

# small_vae_conf FILE: the jobs' VAE on the synthetic images of
# make_synthetic_data, 300 steps with a checkpoint every 25.
small_vae_conf() {
    cat >"$1" <<CONF
model = vae
data = $TESTTMP/data
hidden = 128,64
latent = 16
batch = 64
steps = 300
checkpoint_every = 25
log_every = 25
CONF
}

# sbatch_job NAME SCRIPT SBATCH-ARGS...: submits jobs/SCRIPT from the
# source tree with run folder $TESTTMP/runs/NAME and output
# $TESTTMP/NAME-JOBID.out; prints the job id.
sbatch_job() {
    local name=$1 script=$2
    shift 2
    (cd "$SRC" && RUN_DIR="$TESTTMP/runs/$name" sbatch --parsable --export=ALL --job-name="$name" \
        --output="$TESTTMP/$name-%j.out" "$@" "jobs/$script")
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
restarts() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p'; }
# wait_state JOB STATE SECONDS: fails at once when the job ends otherwise
wait_state() {
    local s
    for _ in $(seq $(($3 * 5))); do
        s=$(job_state "$1")
        [ "$s" = "$2" ] && return 0
        case "$s" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
            return 1 ;;
        esac
        sleep 0.2
    done
    return 1
}
# wait_line FILE REGEX SECONDS
wait_line() {
    for _ in $(seq $(($3 * 10))); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
step_of() { h5dump -a /step "$1" 2>/dev/null | sed -n 's/^ *(0): *//p'; }

# Slurm holds a requeued job back for a while (BeginTime); release_requeued
# JOB OUT lets it go sooner (asked until its second start shows: right after
# the requeue the job is still COMPLETING, and only a PENDING job takes the
# update). Not in the second of the requeue: a slurmd refuses a launch whose
# credential is no newer, to the second, than the one the requeue revoked
# ("Job credential revoked"), and the job would fail.
release_requeued() {
    local pending=0
    for _ in $(seq 120); do
        grep -q "^job $1 start 2 " "$2" && return 0
        if [ "$(job_state "$1")" = PENDING ]; then
            pending=$((pending + 1))
            [ "$pending" -ge 3 ] && scontrol update JobId="$1" StartTime=now 2>/dev/null
        fi
        sleep 0.5
    done
    return 1
}

# preempt JOB OUT: USR1 to the batch script once the run is past step 100
# (twice: a preemption warning and an impatient second one); succeeds when
# the job checkpointed and requeued itself.
preempt() {
    wait_line "$2" "^step *100/" 60 || return 1
    scancel --signal=USR1 --batch "$1"
    sleep 0.3
    scancel --signal=USR1 --batch "$1"
    for _ in $(seq 600); do [ "$(restarts "$1")" = 1 ] && break; sleep 0.2; done
    [ "$(restarts "$1")" = 1 ] && grep -q "requeueing" "$2"
}
