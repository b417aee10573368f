#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine (as root), for the Slurm test in
# tests/slurm.rs: munged, slurmctld and slurmd on localhost, one node with this machine's CPUs
# and memory, one default partition. Needs the Debian packages slurm-wlm and munge.
# Does nothing if a cluster already answers. Exit code 0 once the node is idle, 1 otherwise.
set -uo pipefail

timeout_s=${SLURM_START_TIMEOUT:-60}
host=$(hostname -s)
log() { echo "start-cluster: $*" >&2; }

for tool in munged slurmctld slurmd sinfo scontrol; do
    command -v "$tool" >/dev/null || { log "$tool is not installed (apt-get install slurm-wlm munge)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }

node_state() { sinfo --noheader --nodes="$host" --format=%t 2>/dev/null | head -n1 | tr -d '*~#!%$@^-'; }

if timeout 5 scontrol ping 2>/dev/null | grep -q UP && [ "$(node_state)" = idle ]; then
    log "a cluster is already up; node $host idle"
    exit 0
fi

cpus=$(nproc)
# A little under the physical memory: slurmd drains a node that reports less than configured.
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.95)}' /proc/meminfo)

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
cat >/etc/slurm/slurm.conf <<EOF
# Written by tests/slurm/start-cluster.sh: a single-node cluster for tests.
ClusterName=coherent-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

if [ ! -s /etc/munge/munge.key ]; then
    log "creating a munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null
chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key

if ! pgrep -x munged >/dev/null; then
    munged --force || { log "munged did not start"; exit 1; }
fi
pgrep -x slurmctld >/dev/null || slurmctld || { log "slurmctld did not start; see /var/log/slurm/slurmctld.log"; exit 1; }
pgrep -x slurmd >/dev/null || slurmd || { log "slurmd did not start; see /var/log/slurm/slurmd.log"; exit 1; }

deadline=$((SECONDS + timeout_s))
while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    case "$state" in
        idle | mix | alloc)
            log "node $host is $state ($cpus CPUs, $mem_mb MB)"
            exit 0
            ;;
        down | drain | drng | drained | fail)
            scontrol update nodename="$host" state=resume 2>/dev/null
            ;;
    esac
    sleep 1
done
log "node $host did not become idle within ${timeout_s}s (state: ${state:-no answer})"
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 2>/dev/null
exit 1
