#!/usr/bin/env bash
# Benchmarks, caplab against the reference run side by side on this machine.
#   scripts/bench.sh metrics|reward|rnn|train|decode|epoch|encoders|transformer|burn|all
# Python references live in throwaway venvs (created on first use; PyPI only):
#   metrics: $CAPLAB_COCO_PYTHON (pycocoevalcap, needs java), rnn: $CAPLAB_TORCH_PYTHON (torch).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
target=${CARGO_TARGET_DIR:-target}

venv() { # venv DIR PACKAGES...
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    python3 -m venv "$dir" && "$dir/bin/pip" install --quiet "$@"
  fi
  echo "$dir/bin/python"
}

bench_metrics() {
  # Whole process, all metrics with full METEOR, both sides; the METEOR jar is the venv's.
  # bench.py prints what is timed, caplab's thread count (RAYON_NUM_THREADS, else one per CPU),
  # a 1-thread caplab run and the load average; the headline is the whole-process wall-clock ratio.
  local py=${CAPLAB_COCO_PYTHON:-$(venv .venv-coco pycocoevalcap==1.2)}
  cargo build --release -p caplab-metrics --example score_bench
  "$py" scripts/metrics/bench.py --caplab "$target/release/examples/score_bench" --python "$py" --repeat 5
}

bench_reward() {
  # SCST's CIDEr-D reward (train-set document frequencies, references prepared once).
  cargo run --release -p caplab-metrics --example reward_bench -- 200
}

bench_rnn() {
  local py=${CAPLAB_TORCH_PYTHON:-$(venv .venv-torch torch)}
  cargo run --release -p caplab-models --example bench_rnn -- 20
  "$py" scripts/parity/bench_rnn.py 20
}

bench_train() {
  # One decoder training step on cached features (forward, backward, clipping, Adam): caplab's
  # TrainModel (`caplab bench train-step`) against the same network in PyTorch
  # (scripts/gpu/bench_train_step.py), B = 32 images x 5 captions, T = 20, LSTM 256->512,
  # V = 5000, side by side at 1 thread and at all threads.
  local py=${CAPLAB_TORCH_PYTHON:-$(venv .venv-torch torch)}
  local all sizes
  all=$(nproc)
  sizes=(--images 32 --captions 5 --vocab 5000 --iters 10)
  cargo build --release -p caplab-runner --bin caplab
  for threads in 1 "$all"; do
    RAYON_NUM_THREADS=$threads "$target/release/caplab" bench train-step --device cpu "${sizes[@]}"
    "$py" scripts/gpu/bench_train_step.py --device cpu --threads "$threads" "${sizes[@]}"
  done
}

bench_decode() {
  # caplab's greedy and beam-5 search (`caplab bench decode`: untrained LSTM decoder, embed 256,
  # hidden 512, V = 5000, max_len 20, 1 000 random features; the release binary that `caplab
  # eval` and `caplab caption` run), then the same decoder and searches written the
  # straightforward batched way in PyTorch (scripts/gpu/bench_beam.py), side by side, with 1
  # thread and with all threads; then one image at a time (caplab only).
  local py=${CAPLAB_TORCH_PYTHON:-$(venv .venv-torch torch)}
  cargo build --release -p caplab-runner --bin caplab
  local threads
  for threads in 1 "$(nproc)"; do
    for search in greedy beam; do
      for batch in 100 1000; do
        RAYON_NUM_THREADS=$threads "$target/release/caplab" bench decode --device cpu \
          --search "$search" --images 1000 --batch "$batch" --vocab 5000
        "$py" scripts/gpu/bench_beam.py --device cpu --threads "$threads" --search "$search" \
          --images 1000 --batch "$batch" --vocab 5000
      done
    done
  done
  for search in greedy beam; do
    "$target/release/caplab" bench decode --device cpu --search "$search" --images 50 \
      --batch 1 --vocab 5000
  done
}

bench_epoch() {
  # One epoch of the baseline with a ResNet-18 encoder at 64 px trained end to end: caplab
  # (`caplab run`, its history's wall_s: training and validation) against the plain PyTorch loop
  # of scripts/parity/bench_epoch.py on the same images (training only), side by side with 1
  # thread and with all threads.
  local py=${CAPLAB_TORCH_PYTHON:-$(venv .venv-torch torch torchvision pillow)}
  local out threads
  cargo build --release -p caplab-runner --bin caplab
  for threads in 1 "$(nproc)"; do
    out=$(mktemp -d)
    RAYON_NUM_THREADS=$threads "$target/release/caplab" run experiments/baseline.toml --quiet \
      --set train.epochs=1 --set model.encoder.arch='"resnet18"' \
      --set "experiment.runs_dir=\"$out\"" > /dev/null
    python3 - "$(ls "$out"/baseline/*/history.jsonl)" "$threads" <<'PY'
import json, sys
h = json.loads(open(sys.argv[1]).readline())
print("caplab resnet18 64px, %s threads: epoch 1 in %.1f s (training and validation), process CPU %.0f %%, train loss %.4f"
      % (sys.argv[2], h["wall_s"], 100 * h["cpu_s"] / h["wall_s"], h["train"]["Loss"]))
PY
    rm -rf "$out"
    "$py" scripts/parity/bench_epoch.py --threads "$threads"
  done
}

bench_encoders() {
  # Frozen feature extraction, batch 16, random weights, best / median of 3 batches: `caplab bench
  # encoders` (the release binary `caplab features` runs) against torchvision, side by side with
  # 1 thread and with all threads.
  local py=${CAPLAB_TORCH_PYTHON:-$(venv .venv-torch torch torchvision)}
  local threads
  cargo build --release -p caplab-runner --bin caplab
  for threads in 1 "$(nproc)"; do
    RAYON_NUM_THREADS=$threads "$target/release/caplab" bench encoders --device cpu --iters 3
    "$py" scripts/parity/bench_encoders.py 3 "$threads"
  done
}

bench_transformer() {
  # Issue 27, side by side with PyTorch at all threads: the Transformer decoder with the
  # [model.transformer] defaults (6 post-norm layers, d_model 512, 8 heads, FFN 2048, dropout 0.1)
  # over a 7x7 grid of 2048-d features, V = 10 000: one training step at B = 32, T = 20 (caplab's
  # TrainModel step against scripts/gpu/bench_transformer.py step); greedy and beam-5 decoding of
  # 50 images, caplab with its key/value cache and without, PyTorch's nn.TransformerDecoder
  # (which has no cache); then ViT-B/16 features (224 px, batch 16) against torchvision. The binary
  # is `just run`'s build (own crates at opt-level 3; a release build of Burn is another cold build).
  local py=${CAPLAB_TORCH_PYTHON:-$(venv .venv-torch torch torchvision)}
  local threads search
  threads=$(nproc)
  CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo build --quiet --bin caplab
  local caplab="$target/debug/caplab"
  RAYON_NUM_THREADS=$threads "$caplab" bench train-step --device cpu --decoder transformer \
    --images 32 --captions 1 --vocab 10000 --iters 5
  "$py" scripts/gpu/bench_transformer.py step --threads "$threads" --images 32 --captions 1 \
    --vocab 10000 --iters 5
  for search in greedy beam; do
    RAYON_NUM_THREADS=$threads "$caplab" bench decode --device cpu --decoder transformer \
      --search "$search" --images 50 --batch 50 --vocab 10000
    "$py" scripts/gpu/bench_transformer.py decode --threads "$threads" --search "$search" \
      --images 100 --batch 50 --vocab 10000
  done
  RAYON_NUM_THREADS=$threads "$caplab" bench encoders --device cpu --arch vit_b_16 --iters 3
  "$py" scripts/parity/bench_encoders.py 3 "$threads" vit_b_16
}

bench_burn() {
  # Minimal reproductions of the burn-flex 0.21 costs caplab works around (docs/benchmarks.md).
  cargo run --release -p caplab-models --example burn_flex_repros
}

case "$what" in
  metrics) bench_metrics ;;
  reward) bench_reward ;;
  rnn) bench_rnn ;;
  train) bench_train ;;
  decode) bench_decode ;;
  epoch) bench_epoch ;;
  encoders) bench_encoders ;;
  transformer) bench_transformer ;;
  burn) bench_burn ;;
  all) bench_metrics; bench_reward; bench_rnn; bench_train; bench_decode; bench_epoch; bench_encoders; bench_transformer; bench_burn ;;
  *) echo "unknown benchmark '$what' (metrics | reward | rnn | train | decode | epoch | encoders | transformer | burn | all)" >&2; exit 2 ;;
esac
