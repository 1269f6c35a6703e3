#!/bin/bash
# A one-node Slurm cluster on this machine, for the Slurm tests:
#   tests/slurm/cluster.sh start DIR   writes DIR/slurm.conf, starts munged,
#                                      slurmctld and slurmd; prints the
#                                      SLURM_CONF to export
#   tests/slurm/cluster.sh stop DIR    stops the daemons it started
# The node advertises 8 CPUs whatever the machine has (config_overrides), so
# a job can ask for 4 or 8 tasks on a 2-core machine. Needs root, slurm-wlm
# and munge (tests/slurm/install.sh).
#
# With MN_HOSTS=N the cluster has N nodes n1..nN instead: the namespace hosts
# of tests/multinode/hosts.sh (already up), one slurmd on each, started in
# its namespace with its own host name; slurmctld stays in this namespace and
# listens on the bridge's address. Each node advertises 4 CPUs.
set -euo pipefail
cmd=$1
D=$(realpath -m "$2")
node=$(hostname -s)
HOSTS=${MN_HOSTS:-0}
NET=${MN_NET:-10.77.0}
MN=$(cd "$(dirname "$0")/../multinode" && pwd)/hosts.sh

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
    local ctl=$node nodes
    if [ "$HOSTS" -gt 0 ]; then
        ctl="$node($NET.254)"
        nodes="n[1-$HOSTS]"
    fi
    cat >"$D/slurm.conf" <<CONF
ClusterName=trainer-test
SlurmctldHost=$ctl
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/slurmd/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
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
CONF
    if [ "$HOSTS" -gt 0 ]; then
        for i in $(seq "$HOSTS"); do
            echo "NodeName=n$i NodeAddr=$NET.$i CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=2000 State=UNKNOWN"
        done >>"$D/slurm.conf"
        echo "PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP" >>"$D/slurm.conf"
    else
        cat >>"$D/slurm.conf" <<CONF
NodeName=$node CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    fi
    export SLURM_CONF="$D/slurm.conf"
    /usr/sbin/slurmctld -i -f "$SLURM_CONF"
    if [ "$HOSTS" -gt 0 ]; then
        for i in $(seq "$HOSTS"); do
            mkdir -p "$D/slurmd/n$i"
            "$MN" run "n$i" /usr/sbin/slurmd -f "$SLURM_CONF" -N "n$i"
        done
    else
        mkdir -p "$D/slurmd/$node"
        /usr/sbin/slurmd -f "$SLURM_CONF"
    fi
    local want=$((HOSTS > 0 ? HOSTS : 1))
    for i in $(seq 150); do
        # every node up (idle, mixed or allocated; not down, unknown or future)
        up=$(sinfo -h -N -o %T 2>/dev/null | grep -cE '^(idle|mixed|allocated)' || true)
        [ "$up" -ge "$want" ] && break
        sleep 0.2
    done
    sinfo >&2
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
    for f in "$D"/slurmd-*.pid "$D/slurmctld.pid"; do
        if [ -f "$f" ]; then
            kill "$(cat "$f")" 2>/dev/null || true
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
