#!/usr/bin/env bash
# The ablation study: decoder variants and the attention decoder as sweeps (3 seeds each), beam 3
# and beam 5 as evals of the LSTM reference trials (no retraining), then `caplab compare` with
# mean ± std, 95% CIs and paired bootstrap tests against the LSTM reference.
#   scripts/ablations.sh [EXTRA caplab sweep ARGS...]
#   e.g. --jobs 2, or --set train.epochs=2 --set data.synth.images=600 for a reduced budget
# Re-running the same command skips finished trials (and resumes interrupted ones).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin caplab
caplab=${CARGO_TARGET_DIR:-target}/debug/caplab
out=runs/ablations
mkdir -p "$out"

decoders=$("$caplab" sweep experiments/ablations/decoders.toml "$@" | tail -n 1)
attention=$("$caplab" sweep experiments/ablations/attention.toml "$@" | tail -n 1)

# Search ablations: trials 000-002 are the LSTM reference (zip position 0) with seeds 1, 2, 3.
evals=()
for trial in "$decoders"/00[0-2]-*/; do
  for k in 3 5; do
    report=$("$caplab" -q eval "$trial" --set "eval.search={ method = \"beam\", beam_size = $k, max_len = 24 }")
    evals+=("$(dirname "$report")")
  done
done

"$caplab" compare "$decoders" "$attention" "${evals[@]}" --baseline "$decoders/000-"* --out "$out"
echo "comparison: $out/compare.md (also .csv, .parquet, .html)"
