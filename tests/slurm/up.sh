#!/usr/bin/env bash
# A throwaway single-node SLURM cluster (munge + mariadb + slurmdbd + slurmctld + slurmd)
# on this machine, for tests/test_slurm.py: as root, without systemd or cgroups
# (Debian slurm-wlm 22.05). Stop it with tests/slurm/down.sh.
#
# Without cgroups SLURM cannot confine a job, so: the accounting poller kills a step that
# outgrows its memory request (OverMemoryKill; the job ends FAILED), and processes are
# tracked by process group (proctrack/pgid), so that scancel also stops a job's processes
# whose parent died first, which proctrack/linuxproc would leave running.
#
#   SLURM_CI_DIR        state/log dir                  (default /tmp/slurm-ci)
#   SLURM_CI_DBD        1 = slurmdbd accounting (sacct works), 0 = none (use squeue)
#   SLURM_CI_ACCOUNT    account to create in slurmdbd  (default ciproj)
#   SLURM_CI_PARTITION  partition name                 (default debug)
#   SLURM_CI_CPUS / SLURM_CI_MEM_MB  advertised node size (faked via config_overrides)
set -euo pipefail
D=${SLURM_CI_DIR:-/tmp/slurm-ci}
DBD=${SLURM_CI_DBD:-1}
ACCOUNT=${SLURM_CI_ACCOUNT:-ciproj}
PARTITION=${SLURM_CI_PARTITION:-debug}
CPUS=${SLURM_CI_CPUS:-16}
MEM=${SLURM_CI_MEM_MB:-64000}
HOST=$(hostname -s)
t_start=$(date +%s)

# 1. packages (idempotent: only touch apt when something is missing)
pkgs="slurmctld slurmd slurm-client munge"
[ "$DBD" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p "$D"/{etc,log,run,spool/ctld,spool/d,munge}
: > "$D/pids"

# 2. munge with its own key and socket
chown munge:munge "$D/munge"; chmod 755 "$D/munge"
if [ ! -s "$D/munge/munge.key" ]; then
  dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
  chown munge:munge "$D/munge/munge.key"; chmod 400 "$D/munge/munge.key"
fi
MSOCK="$D/munge/munge.socket.2"
runuser -u munge -- /usr/sbin/munged --socket="$MSOCK" --key-file="$D/munge/munge.key" \
  --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"
echo "munged $(cat "$D/munge/munged.pid")" >> "$D/pids"

# 3. slurm.conf (cgroup-free)
if [ "$DBD" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStoragePass=$MSOCK
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1
AccountingStoreFlags=job_comment"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
cat > "$D/etc/slurm.conf" <<EOF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MSOCK
CredType=cred/munge
StateSaveLocation=$D/spool/ctld
SlurmdSpoolDir=$D/spool/d
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
JobCompType=jobcomp/none
$ACCT
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$D/etc/slurm.conf"
# The jobstep plugin strips SLURM_* (incl. SLURM_CONF) before its inner `srun`,
# so the config must also be reachable at the default path:
mkdir -p /etc/slurm
ln -sfn "$D/etc/slurm.conf" /etc/slurm/slurm.conf

wait_for() { # wait_for SECONDS CMD...
  local n=$(( $1 * 2 )); shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "timeout waiting for: $*" >&2; return 1
}

# 4. mariadb + slurmdbd + accounts
if [ "$DBD" = 1 ]; then
  mkdir -p "$D/mysql" "$D/mysql-run"; chown mysql:mysql "$D/mysql" "$D/mysql-run"
  [ -d "$D/mysql/mysql" ] || mariadb-install-db --user=mysql --datadir="$D/mysql" \
      --auth-root-authentication-method=socket > "$D/log/mariadb-install.log" 2>&1
  /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$D/mysql" \
      --socket="$D/mysql-run/mysqld.sock" --pid-file="$D/mysql-run/mysqld.pid" \
      --bind-address=127.0.0.1 --port=3306 --log-error="$D/mysql-run/mariadb.err" \
      >/dev/null 2>&1 &
  wait_for 60 mariadb --no-defaults -S "$D/mysql-run/mysqld.sock" -uroot -e 'select 1'
  echo "mariadbd $(cat "$D/mysql-run/mysqld.pid")" >> "$D/pids"
  mariadb --no-defaults -S "$D/mysql-run/mysqld.sock" -uroot -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > "$D/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MSOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$D/etc/slurmdbd.conf"
  /usr/sbin/slurmdbd          # reads $(dirname $SLURM_CONF)/slurmdbd.conf
  wait_for 30 test -s "$D/run/slurmdbd.pid"
  echo "slurmdbd $(cat "$D/run/slurmdbd.pid")" >> "$D/pids"
  wait_for 60 sacctmgr -n list cluster
  sacctmgr -i add cluster ci >/dev/null || true
  sacctmgr -i add account "$ACCOUNT" Description=ci Organization=ci >/dev/null || true
  sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null || true
fi

# 5. controller + node daemon
/usr/sbin/slurmctld
wait_for 30 test -s "$D/run/slurmctld.pid"
echo "slurmctld $(cat "$D/run/slurmctld.pid")" >> "$D/pids"
/usr/sbin/slurmd
wait_for 30 test -s "$D/run/slurmd.pid"
echo "slurmd $(cat "$D/run/slurmd.pid")" >> "$D/pids"
wait_for 60 bash -c "sinfo -h -o %T | grep -qx idle"
echo "SLURM up in $(( $(date +%s) - t_start ))s: $(sinfo -h -o '%P %D %c %m %T')"
