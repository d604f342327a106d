#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/up.sh, by the PIDs it recorded (reverse order).
set -uo pipefail
D=${SLURM_CI_DIR:-/tmp/slurm-ci}
export SLURM_CONF="$D/etc/slurm.conf"
scancel --user="$(id -un)" 2>/dev/null || true
[ -f "$D/pids" ] || exit 0
tac "$D/pids" | while read -r name pid; do
  [ -n "$pid" ] || continue
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && { echo "$name ($pid) did not stop, SIGKILL"; kill -9 "$pid"; }
done
: > "$D/pids"
# remove the symlink only if it is ours
[ "$(readlink /etc/slurm/slurm.conf)" = "$D/etc/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
exit 0
