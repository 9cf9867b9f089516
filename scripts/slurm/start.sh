#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine (as root): munge, slurmctld and slurmd,
# the node's CPUs and memory as one partition `caplab`. Debian's slurm-wlm + munge packages.
# Idempotent: a cluster that already answers `sinfo` is left as it is.
# Usage: scripts/slurm/start.sh        (scripts/slurm/stop.sh stops it)
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "start.sh: run as root (it writes /etc/slurm and starts daemons)" >&2
  exit 1
fi
for bin in munged slurmctld slurmd sbatch; do
  command -v "$bin" >/dev/null || { echo "start.sh: $bin not found: apt-get install slurm-wlm munge" >&2; exit 1; }
done
if sinfo -h >/dev/null 2>&1 && [ -n "$(sinfo -h -o %T 2>/dev/null | grep -E 'idle|mix|alloc' || true)" ]; then
  echo "slurm already running"; exit 0
fi

node=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
state=/var/spool/slurm-caplab
mkdir -p /etc/slurm "$state/ctld" "$state/d" /var/log/slurm /run/munge /var/lib/munge /var/log/munge

# munge: a key once, then the daemon.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- munged || munged --force
fi

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=caplab
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
MaxArraySize=10001
NodeName=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=caplab Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
rm -f /etc/slurm/cgroup.conf

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "start.sh: the node did not come up; logs in /var/log/slurm/" >&2
sinfo >&2 || true
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
