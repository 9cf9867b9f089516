#!/usr/bin/env bash
# Stops the single-node Slurm cluster scripts/slurm/start.sh started (jobs are cancelled).
set -uo pipefail
scancel --user="$(id -un)" 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
pkill -x munged 2>/dev/null || true
for _ in $(seq 1 20); do
  pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
  sleep 0.5
done
echo "slurm stopped"
