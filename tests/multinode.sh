#!/bin/bash
# Several nodes over TCP, on one machine: four hosts in network namespaces
# (tests/multinode/hosts.sh) with their links shaped to 1 Gbit/s, a Slurm
# cluster with one slurmd on each (tests/slurm/cluster.sh, MN_HOSTS=4), and
# Open MPI told to use TCP on the hosts' subnet only. Then
#   1. mpirun --host n1,n2 across two hosts, without Slurm, the sum in
#      buckets; and trainer bench-comm across four;
#   2. jobs/vae.sbatch with -N 2 and with -N 4, one task per node (on 4, the
#      gradient's sum in buckets that start during the backward pass);
#   3. jobs/vae.sbatch with -N 2, preempted (USR1) mid-run: it checkpoints,
#      requeues onto the nodes and resumes;
#   4. jobs/gpt.sbatch with -N 2 (the other exact sum: the lane sum);
# each ending with the same parameter bits as a one-node run of the same
# job, which it prints. The job scripts are the users' own, unchanged. Needs
# root (namespaces, daemons); skipped (77) otherwise. It removes everything
# it made, hosts and daemons, also when it fails.
. "$(dirname "$0")/lib.sh"
SRC=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRC/tests/slurm/jobs.sh"
slurm_test_start "the multi-node test"
HOSTS="$SRC/tests/multinode/hosts.sh"
# names of our own, so that a developer's hosts.sh cluster is left alone
export MN_PREFIX=trt MN_NET=10.78.0 MN_BRIDGE=trtbr0 MN_HOSTS=4
C="$TESTTMP/cluster"
cleanup() {
    if [ "$fail" != 0 ] && [ -d "$C/log" ]; then
        for f in "$C"/log/*.log; do
            echo "--- the end of $f ---"
            tail -n 15 "$f"
        done
    fi
    "$SRC/tests/slurm/cluster.sh" stop "$C" >/dev/null 2>&1 || true
    "$HOSTS" down || true
    rm -rf "$TESTTMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # a killed test cleans up too (through EXIT)
make_synthetic_data && make_synthetic_text || { bad "synthetic data"; finish; exit 1; }

small_vae_conf "$TESTTMP/vae.conf"
cat >"$TESTTMP/gpt.conf" <<CONF
model = gpt
data = $TESTTMP/text
layers = 2
dim = 32
heads = 2
ctx = 32
batch = 16
lanes = 8
steps = 40
eval_every = 20
sample_every = 0
checkpoint_every = 20
log_every = 10
CONF

# one node: the bits every multi-node run must end with
$MPI -np 2 "$TRAINER" train --config "$TESTTMP/vae.conf" --run-dir "$TESTTMP/one/vae" \
    >"$TESTTMP/one-vae.log" 2>&1 || { bad "one-node VAE run"; cat "$TESTTMP/one-vae.log"; }
$MPI -np 1 "$TRAINER" train --config "$TESTTMP/gpt.conf" --run-dir "$TESTTMP/one/gpt" \
    >"$TESTTMP/one-gpt.log" 2>&1 || { bad "one-node GPT run"; cat "$TESTTMP/one-gpt.log"; }
vae_bits=$(params_checksum "$TESTTMP/one/vae/checkpoint.h5")
gpt_bits=$(params_checksum "$TESTTMP/one/gpt/checkpoint.h5")
echo "one node: VAE (2 ranks) $vae_bits, GPT (1 rank) $gpt_bits"

"$HOSTS" up 4 || { bad "four hosts in network namespaces (ip netns, veth, bridge)"; finish; exit 1; }
"$HOSTS" shape 1gbit || { bad "shaping the links (tc tbf)"; finish; exit 1; }
ok "hosts n1..n4 at $MN_NET.1-4, links shaped: $(tc -n trt1 qdisc show dev eth0 | cut -d' ' -f1-11)"
# what each host has sent so far, from its link's token bucket
sent() { tc -s -n "trt${1#n}" qdisc show dev eth0 | sed -n 's/^ *Sent \([0-9]*\) bytes.*/\1/p'; }
# Open MPI: TCP between ranks and daemons, on the hosts' subnet only; the
# job scripts pass the environment on (sbatch --export=ALL)
export OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=$MN_NET.0/24 \
    OMPI_MCA_oob_tcp_if_include=$MN_NET.0/24

# compare NAME WANT CHECKPOINT WHAT
compare() {
    local got
    got=$(params_checksum "$3")
    if [ -n "$got" ] && [ "$got" = "$2" ]; then
        ok "$1: the one-node bits, $got ($4)"
    else
        bad "$1: parameters '$got', one node $2 ($4)"
    fi
}

# 1. plain mpirun across two hosts, its daemons started through our rsh,
#    the gradient's sum in buckets of 64 KiB that start during the backward
#    pass (the one-node run sums it whole after the pass)
before=$(sent n2)
$MPI --host n1:1,n2:1 -np 2 --mca plm_rsh_agent "$SRC/tests/multinode/rsh" \
    "$TRAINER" train --config "$TESTTMP/vae.conf" --run-dir "$TESTTMP/mpirun" --bucket-kb 64 \
    >"$TESTTMP/mpirun.log" 2>&1 || { bad "mpirun --host n1:1,n2:1"; cat "$TESTTMP/mpirun.log"; }
compare "mpirun --host n1:1,n2:1 --bucket-kb 64" "$vae_bits" "$TESTTMP/mpirun/checkpoint.h5" \
    "n2 sent $(($(sent n2) - before)) bytes over its link"
grep "^communication:" "$TESTTMP/mpirun.log"
grep -q "gradient buckets of 64 KiB a step started during the backward pass" "$TESTTMP/mpirun.log" ||
    bad "the bucketed run does not report its buckets"
# the reductions timed alone across four hosts (jobs/scaling.sh's measurements)
if $MPI --host n1:1,n2:1,n3:1,n4:1 -np 4 --mca plm_rsh_agent "$SRC/tests/multinode/rsh" \
    "$TRAINER" bench-comm --sizes 1024,262144 --repeats 3 >"$TESTTMP/bench.log" 2>&1 &&
    [ "$(grep -cE '^[0-9]+ [0-9]+ [0-9.e-]+ [0-9]+ [0-9.e-]+$' "$TESTTMP/bench.log")" = 2 ]; then
    ok "bench-comm on four hosts: $(grep -v '^#' "$TESTTMP/bench.log" | tr '\n' ';')"
else
    bad "bench-comm on four hosts"
    cat "$TESTTMP/bench.log"
fi

eval "$("$SRC/tests/slurm/cluster.sh" start "$C")" || { bad "start Slurm on the hosts"; finish; exit 1; }
ok "slurmctld and four slurmd up: $(sinfo -h -o '%P %a %D %T %N')"
export TRAINER

# 2. the VAE job on 2 and on 4 nodes
export CONFIG="$TESTTMP/vae.conf"
for n in 2 4; do
    # on 4 nodes, the sum in buckets of 256 KiB (the job passes TRAIN_ARGS on)
    if [ "$n" = 4 ]; then export TRAIN_ARGS="--bucket-kb 256"; else unset TRAIN_ARGS; fi
    before=$(sent n$n)
    j=$(sbatch_job "vae-n$n" vae.sbatch -N "$n" --ntasks-per-node=1 --ntasks="$n") ||
        { bad "sbatch -N $n"; continue; }
    out="$TESTTMP/vae-n$n-$j.out"
    if wait_state "$j" COMPLETED 300; then
        ok "job $j: $(grep -m1 '^job .* start 1 on' "$out" | cut -d, -f1)"
    else
        bad "job $j (-N $n) ended as $(job_state "$j")"
        cat "$out"
    fi
    grep -q "train vae on $n rank(s)" "$out" || bad "job $j did not run on $n ranks"
    compare "vae.sbatch -N $n" "$vae_bits" "$TESTTMP/runs/vae-n$n/checkpoint.h5" \
        "n$n sent $(($(sent n$n) - before)) bytes"
done

unset TRAIN_ARGS
# 3. preempted on 2 nodes: checkpoint, requeue, resume on the nodes
j=$(sbatch_job vae-pre vae.sbatch -N 2 --ntasks-per-node=1 --ntasks=2) || bad "sbatch"
out="$TESTTMP/vae-pre-$j.out"
if preempt "$j" "$out"; then
    ok "job $j checkpointed and requeued itself: $(grep -m1 '^stopped by a signal' "$out")"
else
    bad "job $j did not requeue"
    cat "$out"
fi
release_requeued "$j" "$out"
if wait_state "$j" COMPLETED 300 && grep -q "^resumed from .* at step" "$out"; then
    ok "job $j restarted on $(grep '^job .* start 2 on' "$out" | sed 's/.* on \([^:]*\):.*/\1/'): $(grep '^resumed from' "$out")"
else
    bad "job $j after its requeue: $(job_state "$j")"
    cat "$out"
fi
compare "vae.sbatch -N 2, preempted and resumed" "$vae_bits" "$TESTTMP/runs/vae-pre/checkpoint.h5" \
    "$(grep -c '^job .* start' "$out") starts"

# 4. the GPT job on 2 nodes
export CONFIG="$TESTTMP/gpt.conf"
j=$(sbatch_job gpt-n2 gpt.sbatch -N 2 --ntasks-per-node=1 --ntasks=2) || bad "sbatch gpt"
out="$TESTTMP/gpt-n2-$j.out"
wait_state "$j" COMPLETED 300 || { bad "job $j ended as $(job_state "$j")"; cat "$out"; }
compare "gpt.sbatch -N 2" "$gpt_bits" "$TESTTMP/runs/gpt-n2/checkpoint.h5" \
    "$(grep -a -m1 '^final:' "$out" | cut -d, -f1-2)"
finish
