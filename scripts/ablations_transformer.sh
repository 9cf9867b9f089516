#!/usr/bin/env bash
# The Transformer-decoder and ViT ablation (issue 27): the soft-attention LSTM on resnet_tiny
# (experiments/ablations/transformer_baseline.toml) against the Transformer decoder on resnet_tiny
# and on vit_tiny (experiments/ablations/transformer.toml), 3 seeds each on the same built-in
# data and budget, then `caplab compare` (mean ± std, 95% intervals, paired bootstrap against the
# LSTM + attention group) into runs/ablations-transformer/.
#   scripts/ablations_transformer.sh [EXTRA caplab sweep ARGS...]      e.g. --jobs 2
# Re-running the same command skips finished trials (and resumes interrupted ones).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_PROFILE_DEV_OPT_LEVEL=${CARGO_PROFILE_DEV_OPT_LEVEL:-3} cargo build --quiet --bin caplab
caplab=${CARGO_TARGET_DIR:-target}/debug/caplab
out=runs/ablations-transformer
mkdir -p "$out"

baseline=$("$caplab" sweep experiments/ablations/transformer_baseline.toml "$@" | tail -n 1)
transformer=$("$caplab" sweep experiments/ablations/transformer.toml "$@" | tail -n 1)

"$caplab" compare "$baseline" "$transformer" --baseline "$(ls -d "$baseline"/000-* | head -n 1)" --out "$out"
echo "comparison: $out/compare.md (also .csv, .parquet, .html)"
