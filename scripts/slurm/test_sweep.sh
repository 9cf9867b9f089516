#!/usr/bin/env bash
# Submits a 4-trial tiny sweep (2 decoders × 2 seeds) to a real single-node Slurm as a job array,
# waits for it, and checks that all four run directories finished and that `caplab compare`
# reads the sweep. Starts the cluster (scripts/slurm/start.sh) and stops it again if it started it.
#   scripts/slurm/test_sweep.sh CAPLAB_BINARY      (as root; run by .ci/run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
caplab=$(realpath "${1:?usage: test_sweep.sh CAPLAB_BINARY}")
t0=$(date +%s)

started=0
if ! sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
  bash "$here/start.sh"
  started=1
fi
work=$(mktemp -d)
cleanup() {
  [ "$started" = 1 ] && bash "$here/stop.sh" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

job=$("$caplab" -q sweep "$repo/experiments/tiny.toml" --seeds 1,2 \
  --set 'sweep.grid={ "model.decoder.cell" = ["lstm", "gru"] }' --set train.epochs=1 \
  --slurm --cpus-per-task 1 --max-parallel 2 --submit)
echo "submitted array job $job"
sweep_dir=$(ls -d runs/tiny/sweep-*)
for _ in $(seq 1 300); do
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 1
done
if [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; then
  echo "FAIL: job $job still queued or running after 300 s" >&2
  squeue >&2; exit 1
fi
"$caplab" sweep "$sweep_dir" --status
n=$(ls "$sweep_dir"/*/report.json 2>/dev/null | wc -l)
if [ "$n" != 4 ]; then
  echo "FAIL: $n of 4 trials finished; task logs:" >&2
  tail -n 20 "$sweep_dir"/slurm/*.out >&2
  exit 1
fi
tasks=$(ls "$sweep_dir"/slurm/"${job}"_*.out | wc -l)
[ "$tasks" = 4 ] || { echo "FAIL: $tasks array task logs, expected 4" >&2; exit 1; }
"$caplab" compare "$sweep_dir" > compare.md
grep -q "gru" compare.md || { echo "FAIL: compare does not show the gru trials" >&2; cat compare.md >&2; exit 1; }
echo "slurm sweep: 4 of 4 array tasks finished, compare read them ($(( $(date +%s) - t0 )) s)"
