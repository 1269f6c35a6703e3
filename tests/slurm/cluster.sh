#!/bin/bash
# A one-node Slurm cluster on this machine, for the Slurm tests:
#   tests/slurm/cluster.sh start DIR   writes DIR/slurm.conf, starts munged,
#                                      slurmctld and slurmd; prints the
#                                      SLURM_CONF to export
#   tests/slurm/cluster.sh stop DIR    stops the daemons it started
# The node advertises 8 CPUs whatever the machine has (config_overrides), so
# a job can ask for 4 or 8 tasks on a 2-core machine. Needs root, slurm-wlm
# and munge (tests/slurm/install.sh).
set -euo pipefail
cmd=$1
D=$(realpath -m "$2")
node=$(hostname -s)

start() {
    mkdir -p "$D/state" "$D/slurmd" "$D/munge" "$D/log"
    # munge: a key of our own when the machine has none
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
    if ! munge -n >/dev/null 2>&1; then
        su -s /bin/sh munge -c "/usr/sbin/munged --force" 2>/dev/null ||
            /usr/sbin/munged --force
        echo "started" >"$D/munged.started"
    fi
    for i in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
    cat >"$D/slurm.conf" <<CONF
ClusterName=trainer-test
SlurmctldHost=$node
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/slurmd
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.log
ReturnToService=2
JobRequeue=1
SchedulerParameters=nohold_on_prolog_fail
MinJobAge=600
SlurmdParameters=config_overrides
KillWait=30
NodeName=$node CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$D/slurm.conf"
    /usr/sbin/slurmctld -i -f "$SLURM_CONF"
    /usr/sbin/slurmd -f "$SLURM_CONF"
    for i in $(seq 100); do
        state=$(sinfo -h -o %T 2>/dev/null || true)
        case "$state" in idle*|mixed*|allocated*) break ;; esac
        sleep 0.2
    done
    sinfo >&2
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
    for d in slurmd slurmctld; do
        if [ -f "$D/$d.pid" ]; then
            kill "$(cat "$D/$d.pid")" 2>/dev/null || true
        fi
    done
    sleep 1
    if [ -f "$D/munged.started" ]; then
        pkill -x munged 2>/dev/null || true
        rm -f "$D/munged.started"
    fi
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
