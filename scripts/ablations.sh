#!/usr/bin/env bash
# Runs every spec in experiments/ablations/ and writes a side-by-side comparison.
#   scripts/ablations.sh [EXTRA caplab run ARGS...]   e.g. --set train.epochs=2 for a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/ablations
mkdir -p "$out"
reports=()
for spec in experiments/ablations/*.toml; do
  echo "== $spec"
  report=$(cargo run --quiet --bin caplab -- run "$spec" --quiet "$@")
  reports+=("$(dirname "$report")")
done
cargo run --quiet --bin caplab -- compare "${reports[@]}" > "$out/compare.md"
echo "comparison: $out/compare.md"
