#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the tests of `dnas submit slurm`:
# installs Debian's slurm-wlm and munge (once, as root), writes a one-node slurm.conf for this
# machine (cores and memory read now; proctrack/linuxproc, task/none, select/cons_tres — no
# cgroup plugins, so it runs in a container), starts munged, slurmctld and slurmd, and waits until
# `sinfo` shows the node idle. Idempotent: a running cluster is left as it is.
#   tools/slurm_cluster.sh [start|stop|status]        (default: start)
# State lives under $DNAS_HOME/slurm (spool, logs, the generated slurm.conf).
set -u
cmd=${1:-start}
home="${DNAS_HOME:-$HOME/.cache/dnas}/slurm"
conf=/etc/slurm/slurm.conf
say() { echo "[slurm] $*" >&2; }

need_root() { [[ $(id -u) -eq 0 ]] || { say "needs root (apt-get, munge keys, slurm daemons)"; exit 2; }; }

install() {
  if command -v slurmctld > /dev/null && command -v munged > /dev/null; then return 0; fi
  need_root
  say "installing slurm-wlm and munge from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge > "$home/apt.log" 2>&1 \
    || { say "apt-get failed, see $home/apt.log"; exit 2; }
}

write_conf() {
  local host cpus mem_mb
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))
  mkdir -p "$home/spool/ctld" "$home/spool/d" "$home/log" /etc/slurm
  cat > "$home/slurm.conf" <<EOF
# Written by tools/slurm_cluster.sh for $host ($cpus cores, $mem_mb MiB): one node, no cgroups.
ClusterName=dnas-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$home/spool/ctld
SlurmdSpoolDir=$home/spool/d
SlurmctldPidFile=$home/slurmctld.pid
SlurmdPidFile=$home/slurmd.pid
SlurmctldLogFile=$home/log/slurmctld.log
SlurmdLogFile=$home/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
# Preemption signals reach the job's processes; requeued jobs may run again.
JobRequeue=1
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  cp "$home/slurm.conf" "$conf"
}

start_munge() {
  mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge 2>/dev/null
  chmod 0755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  if ! munge -n > /dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --force || { say "munged did not start"; exit 2; }
  fi
}

running() { pgrep -x slurmctld > /dev/null && pgrep -x slurmd > /dev/null; }

wait_idle() {
  for _ in $(seq 60); do
    state=$(sinfo -h -o '%t' 2>/dev/null | head -1)
    case $state in
      idle|mix|alloc) say "node $(hostname -s) is $state"; return 0 ;;
      down*|drain*) scontrol update nodename="$(hostname -s)" state=resume > /dev/null 2>&1 ;;
    esac
    sleep 1
  done
  say "the node did not come up; logs in $home/log"; exit 2
}

case $cmd in
  start)
    mkdir -p "$home"
    if running && sinfo > /dev/null 2>&1; then wait_idle; exit 0; fi
    need_root
    install
    write_conf
    start_munge
    pgrep -x slurmctld > /dev/null || /usr/sbin/slurmctld -i || { say "slurmctld did not start; $home/log/slurmctld.log"; exit 2; }
    pgrep -x slurmd > /dev/null || /usr/sbin/slurmd || { say "slurmd did not start; $home/log/slurmd.log"; exit 2; }
    wait_idle
    ;;
  stop)
    pkill -x slurmd; pkill -x slurmctld
    say "stopped"
    ;;
  status)
    if running; then sinfo; squeue; else say "not running"; exit 1; fi
    ;;
  *) say "usage: $0 [start|stop|status]"; exit 2 ;;
esac
