#!/usr/bin/env bash
# Issue 15: everything caplab has to prove on a GPU, as ONE script for a GPU machine that has the
# prebuilt x86-64 `caplab` binary (built elsewhere with `--features cuda`) and python with torch
# and torchvision, but no Rust toolchain. Meant to finish within 8 minutes on one H200.
#
#   scripts/gpu/check.sh RESULTS_DIR
#
# Steps (each one's log, figures and verdict go to RESULTS_DIR; summary.tsv lists them all):
#   env          nvidia-smi, caplab and torch versions
#   tiny_f32     a 2-epoch tiny run on cuda (scripts/gpu/specs/tiny.toml); report says cuda:0
#   tiny_bf16    the same run in bf16; compare_losses.py: every epoch's train and valid loss
#                within 5 % (relative) of f32's
#   resume       specs/resume.toml (4 epochs) uninterrupted, then killed (SIGKILL) after epoch 2 and
#                `caplab resume`d; compare_runs.py: report outcome and captions identical
#   baseline     experiments/baseline.toml on cuda, its report.{md,json} copied
#   bench_*      the GPU benchmarks, caplab and PyTorch side by side in this same run:
#                train_step  decoder-only step, LSTM 512, V=10k, B=128, T=20 (f32, bf16) vs cuDNN
#                beam        batched beam k=5 on 5000 images, captions/s
#                features    ResNet-50 / Inception v3 extraction at batch 128, f32 and bf16,
#                            `caplab features` vs torchvision (end to end over a JPEG folder)
#                epoch       NOT measurable here: see summary.tsv (needs Flickr8k on the machine)
#
# Environment:
#   CAPLAB_BIN              the caplab binary (default target/release/caplab; when absent and
#                           gpu-bin/caplab.xz exists, that is unpacked to $WORK/caplab)
#   PYTHON                  python with torch + torchvision (default python3)
#   CAPLAB_GPU_CHECK_DRY=1  plumbing check on a machine without a GPU: every caplab step on the
#                           CPU, small sizes, f32 only (bf16 is checked to be refused on the CPU and
#                           an f32 rerun stands in for it), PyTorch steps skipped without torch
#   CAPLAB_GPU_WORK         scratch folder (default: a new temporary one)
#   CAPLAB_GPU_BUDGET_S     steps that would start after this many seconds are skipped (450)
set -u -o pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 RESULTS_DIR" >&2
    exit 2
fi
mkdir -p "$1" || exit 2
RESULTS=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GPU="$ROOT/scripts/gpu"
DRY=${CAPLAB_GPU_CHECK_DRY:-0}
PY=${PYTHON:-python3}
BUDGET=${CAPLAB_GPU_BUDGET_S:-450}
WORK=${CAPLAB_GPU_WORK:-$(mktemp -d /tmp/caplab-gpu-check.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
T0=$(date +%s)
SUMMARY="$RESULTS/summary.tsv"
printf 'step\tstatus\tseconds\tnote\n' >"$SUMMARY"
FAILED=0

CAPLAB=${CAPLAB_BIN:-$ROOT/target/release/caplab}
if [ ! -x "$CAPLAB" ] && [ -f "$ROOT/gpu-bin/caplab.xz" ]; then
    xz -dc "$ROOT/gpu-bin/caplab.xz" >"$WORK/caplab" && chmod +x "$WORK/caplab"
    CAPLAB="$WORK/caplab"
fi
if [ ! -x "$CAPLAB" ]; then
    echo "no caplab binary at $CAPLAB (set CAPLAB_BIN)" >&2
    exit 2
fi

if [ "$DRY" = 1 ]; then
    DEV=cpu TORCH_DEV=cpu PRECISIONS="f32"
    TS_ARGS=(--images 8 --captions 1 --vocab 1000 --iters 2)
    BEAM_ARGS=(--images 40 --batch 20 --vocab 1000)
    FEAT_IMAGES=16 FEAT_BATCH=8 FEAT_ARCHS="resnet50"
    BASELINE_SETS=(--set train.epochs=1 --set data.synth.images=120)
    TIMEOUT_SCALE=4
else
    DEV=cuda TORCH_DEV=cuda PRECISIONS="f32 bf16"
    TS_ARGS=(--images 128 --captions 1 --vocab 10000 --iters 20)
    BEAM_ARGS=(--images 5000 --batch 500 --vocab 10000)
    FEAT_IMAGES=1024 FEAT_BATCH=128 FEAT_ARCHS="resnet50 inception_v3"
    BASELINE_SETS=()
    TIMEOUT_SCALE=1
fi
TORCH=0
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    TORCH=1
fi

elapsed() { echo $(($(date +%s) - T0)); }

# record STEP STATUS SECONDS NOTE
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$SUMMARY"
    printf '== %-22s %-5s %4ss  %s\n' "$1" "$2" "$3" "$4"
    if [ "$2" = FAIL ]; then FAILED=$((FAILED + 1)); fi
}

# step NAME TIMEOUT_S CMD...: runs CMD (stdout+stderr to RESULTS/NAME.log) unless the budget is
# spent; records PASS/FAIL/TIMEOUT. Returns CMD's status (99 when skipped).
step() {
    local name=$1 limit=$(($2 * TIMEOUT_SCALE)) start rc
    shift 2
    if [ "$(elapsed)" -ge "$BUDGET" ]; then
        record "$name" SKIP 0 "time budget (${BUDGET}s) spent"
        return 99
    fi
    start=$(date +%s)
    (cd "$WORK" && timeout --kill-after=5 "$limit" "$@") >"$RESULTS/$name.log" 2>&1
    rc=$?
    local secs=$(($(date +%s) - start))
    if [ $rc -eq 0 ]; then
        record "$name" PASS "$secs" "${NOTE:-}"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        record "$name" FAIL "$secs" "timed out after ${limit}s (log: $name.log)"
    else
        record "$name" FAIL "$secs" "exit $rc (log: $name.log): $(grep -m1 -i 'error' "$RESULTS/$name.log" | cut -c1-200)"
    fi
    NOTE=
    return $rc
}

# The run directory a `caplab run` log names (its last line is RUN/report.md).
run_dir_of() { dirname "$(grep -E 'report\.md$' "$RESULTS/$1.log" | tail -1)"; }

keep_run() { # keep_run RUN NAME: the run's report and history into RESULTS/NAME/
    mkdir -p "$RESULTS/$2"
    cp "$1"/report.json "$1"/report.md "$1"/history.jsonl "$RESULTS/$2/" 2>/dev/null || true
}

echo "caplab GPU check: dry=$DRY device=$DEV results=$RESULTS work=$WORK"

# --- env ---------------------------------------------------------------------------------------
{
    date -u +%Y-%m-%dT%H:%M:%SZ
    if [ "$DRY" = 1 ]; then echo "dry run: no nvidia-smi"; else nvidia-smi; fi
    echo "caplab: $CAPLAB ($("$CAPLAB" --version))"
    if [ $TORCH = 1 ]; then
        "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
    else
        echo "no torch in $PY: PyTorch sides skipped"
    fi
} >"$RESULTS/env.txt" 2>&1
cat "$RESULTS/env.txt"
record env PASS 0 "nvidia-smi, versions: env.txt"

COMMON=(--set "experiment.device=\"$DEV\"" --set "experiment.runs_dir=\"$WORK/runs\""
    --set "data.root=\"$WORK/data/gpu-shapes\"")

# --- the GPU-path suite (tests/gpu.rs), the one CI runs on lavapipe, here on cuda ----------------
# Its test binary is built with the caplab binary (`cargo test -p caplab-runner --features cuda
# --test gpu --no-run`) and carried as gpu-bin/gpu-tests.xz; it runs the carried caplab.
GPU_TESTS=${CAPLAB_GPU_TESTS:-}
if [ -z "$GPU_TESTS" ] && [ -f "$ROOT/gpu-bin/gpu-tests.xz" ]; then
    xz -dc "$ROOT/gpu-bin/gpu-tests.xz" >"$WORK/gpu-tests" && chmod +x "$WORK/gpu-tests"
    GPU_TESTS="$WORK/gpu-tests"
fi
if [ -n "$GPU_TESTS" ] && [ "$DRY" != 1 ]; then
    NOTE="tests/gpu.rs on cuda (tolerances in docs/gpu.md)" step gpu_suite 240 \
        env RUST_MIN_STACK=67108864 CAPLAB_TEST_BIN="$CAPLAB" CAPLAB_GPU_TEST_DEVICE=cuda "$GPU_TESTS" --test-threads 1 --nocapture
else
    record gpu_suite SKIP 0 "no gpu-bin/gpu-tests.xz (or dry run)"
fi

# --- tiny runs: f32, bf16 ----------------------------------------------------------------------
if step tiny_f32 120 "$CAPLAB" run "$GPU/specs/tiny.toml" "${COMMON[@]}"; then
    F32_RUN=$(run_dir_of tiny_f32)
    keep_run "$F32_RUN" tiny_f32
    if [ "$DRY" != 1 ] && ! grep -q '"device": *"cuda:0' "$F32_RUN/report.json"; then
        record tiny_f32_device FAIL 0 "report.json does not name cuda:0"
    fi
fi
if [ "$DRY" = 1 ]; then
    # The CPU refuses bf16 with a clear error; an f32 rerun stands in for the bf16 run.
    NOTE="bf16 refused on the CPU as expected" step tiny_bf16_refused 60 env CAPLAB="$CAPLAB" \
        SPEC="$GPU/specs/tiny.toml" bash -c '"$CAPLAB" run "$SPEC" --dry-run \
        --set "experiment.device=\"cpu\"" --set "experiment.precision=\"bf16\"" 2>&1 |
        tee /dev/stderr | grep -q "trains in f32"'
    LOW=f32 LOW_STEP=tiny_f32_rerun
else
    LOW=bf16 LOW_STEP=tiny_bf16
fi
if step $LOW_STEP 120 "$CAPLAB" run "$GPU/specs/tiny.toml" "${COMMON[@]}" \
    --set "experiment.precision=\"$LOW\""; then
    LOW_RUN=$(run_dir_of $LOW_STEP)
    keep_run "$LOW_RUN" "$LOW_STEP"
    if [ -n "${F32_RUN:-}" ]; then
        NOTE="tolerance: 5 % relative per epoch, train and valid loss" step loss_agreement 30 \
            "$PY" "$GPU/compare_losses.py" "$F32_RUN" "$LOW_RUN" "$RESULTS/loss_agreement.json"
    fi
fi

# --- kill and resume ---------------------------------------------------------------------------
RCOMMON=("${COMMON[@]}")
if step resume_whole 150 "$CAPLAB" run "$GPU/specs/resume.toml" "${RCOMMON[@]}"; then
    WHOLE=$(run_dir_of resume_whole)
    keep_run "$WHOLE" resume_whole
    NOTE="killed after epoch 2 of 4, resumed; report outcome + captions compared" \
        step resume_identical 200 "$GPU/kill_resume.sh" "$CAPLAB" "$PY" "$WORK/runs/gpu-resume" \
        "$WHOLE" "$RESULTS/resume_identical.json" "$GPU/specs/resume.toml" "${RCOMMON[@]}"
fi

# --- baseline ----------------------------------------------------------------------------------
if step baseline 180 "$CAPLAB" run "$ROOT/experiments/baseline.toml" \
    --set "experiment.device=\"$DEV\"" --set "experiment.runs_dir=\"$WORK/runs\"" \
    --set "data.root=\"$WORK/data/shapes\"" "${BASELINE_SETS[@]}"; then
    keep_run "$(run_dir_of baseline)" baseline
fi

# --- benchmarks --------------------------------------------------------------------------------
for p in $PRECISIONS; do
    step "bench_train_step_caplab_$p" 90 "$CAPLAB" bench train-step --device "$DEV" \
        --precision "$p" "${TS_ARGS[@]}"
    if [ $TORCH = 1 ]; then
        step "bench_train_step_pytorch_$p" 90 "$PY" "$GPU/bench_train_step.py" \
            --device "$TORCH_DEV" --dtype "$p" "${TS_ARGS[@]}"
    fi
done
step bench_beam_caplab 150 "$CAPLAB" bench beam --device "$DEV" "${BEAM_ARGS[@]}"
if [ $TORCH = 1 ]; then
    step bench_beam_pytorch 120 "$PY" "$GPU/bench_beam.py" --device "$TORCH_DEV" "${BEAM_ARGS[@]}"
fi

# Feature extraction over one folder of JPEGs: the synthetic set's images (from the tiny runs).
FEAT_DIR="$WORK/feature-images"
mkdir -p "$FEAT_DIR"
SRC=$(ls -d "$WORK"/data/shapes/images "$WORK"/data/gpu-shapes/images 2>/dev/null | head -1)
if [ -n "$SRC" ]; then
    n=0
    while [ $n -lt "$FEAT_IMAGES" ]; do # repeat the set's images up to FEAT_IMAGES files
        for f in "$SRC"/*.jpg; do
            [ $n -ge "$FEAT_IMAGES" ] && break
            cp "$f" "$FEAT_DIR/$(printf '%06d' $n).jpg"
            n=$((n + 1))
        done
    done
    for arch in $FEAT_ARCHS; do
        for p in $PRECISIONS; do
            # The first pass compiles and autotunes the kernels; the second is timed.
            step "bench_features_caplab_${arch}_${p}_warmup" 120 "$CAPLAB" features --encoder "$arch" \
                --images "$FEAT_DIR" --out "$WORK/f-$arch-$p.safetensors" --batch-size "$FEAT_BATCH" \
                --device "$DEV" --precision "$p"
            rm -f "$WORK/f-$arch-$p.safetensors"
            step "bench_features_caplab_${arch}_${p}" 120 "$CAPLAB" features --encoder "$arch" \
                --images "$FEAT_DIR" --out "$WORK/f-$arch-$p.safetensors" --batch-size "$FEAT_BATCH" \
                --device "$DEV" --precision "$p"
        done
    done
    if [ $TORCH = 1 ]; then
        step bench_features_pytorch 240 "$PY" "$GPU/bench_features.py" "$FEAT_DIR" \
            --device "$TORCH_DEV" --batch "$FEAT_BATCH" --archs "${FEAT_ARCHS// /,}" \
            --dtypes "${PRECISIONS// /,}"
    fi
else
    record bench_features FAIL 0 "no synthetic images to encode (tiny and baseline runs failed)"
fi
record bench_epoch SKIP 0 "not measurable here: needs Flickr8k images on this machine and the seeds' PyTorch loop that re-encodes every epoch"

# --- figures -----------------------------------------------------------------------------------
{
    echo "# caplab GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ) (dry=$DRY, device=$DEV)"
    echo
    head -20 "$RESULTS/env.txt" | grep -E 'NVIDIA|Driver|CUDA|torch|caplab' || true
    echo
    for f in "$RESULTS"/bench_*.log; do
        [ -f "$f" ] || continue
        echo "## $(basename "$f" .log)"
        grep -E 'caplab|pytorch|images/s' "$f" | grep -v -E '^\s*$' | tail -6
        echo
    done
    for f in loss_agreement resume_identical; do
        [ -f "$RESULTS/$f.log" ] && { echo "## $f"; tail -8 "$RESULTS/$f.log"; echo; }
    done
    echo "## summary"
    column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
} >"$RESULTS/figures.md"
cat "$RESULTS/figures.md"
echo "total $(elapsed) s; $FAILED failed step(s); results in $RESULTS"
[ $FAILED -eq 0 ]
