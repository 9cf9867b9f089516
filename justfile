# caplab tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Train, evaluate and report the experiment a spec describes. caplab's own crates are built at
# opt-level 3 here (dependencies always are): the baseline takes 0.84x the time it takes at the
# opt-level 1 `just test` builds them with (docs/benchmarks.md). Both builds share the
# dependencies and live side by side in target/debug.
run SPEC *ARGS:
    CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo build --bin caplab
    CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo run --quiet --bin caplab -- run {{SPEC}} {{ARGS}}

# Any caplab command with the same fast build as `just run`, e.g. `just caplab eval runs/baseline/RUN`.
caplab *ARGS:
    CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo run --quiet --bin caplab -- {{ARGS}}

# The test suite (what CI runs).
test:
    cargo test --workspace --no-fail-fast

# The GPU-path suite (tests/gpu.rs) on burn's wgpu backend: Mesa's lavapipe in CI (apt install
# mesa-vulkan-drivers), any Vulkan GPU with DEVICE=wgpu or wgpu:N.
test-gpu DEVICE="wgpu:cpu":
    RUST_MIN_STACK=67108864 CAPLAB_GPU_TEST_DEVICE={{DEVICE}} cargo test -p caplab-runner --features vulkan --test gpu --lib -- --test-threads 1

# Type-checks the CUDA build (burn-cuda, its tests included; no GPU or CUDA toolkit needed), as CI does.
check-cuda:
    cargo check -p caplab-runner --features cuda --all-targets

# Benchmarks against the references: `just bench metrics`, `just bench reward`, `just bench rnn`, `just bench train`, `just bench decode`, `just bench epoch`, `just bench encoders`, `just bench transformer`, `just bench burn`.
bench WHAT="all":
    bash scripts/bench.sh {{WHAT}}

# Format all crates.
fmt:
    cargo fmt --all

# No import cycles between the modules of any crate (scripts/check_cycles.py; docs/architecture.md).
cycles:
    python3 scripts/check_cycles.py --self-test
    python3 scripts/check_cycles.py crates/data crates/models crates/metrics crates/runner crates/fuzz

# Coverage-guided fuzzing of one Burn-free parser with cargo-fuzz (needs nightly and
# `cargo install cargo-fuzz`), e.g. `just fuzz captions_csv 300`. New inputs go to a scratch
# corpus; the committed one (fuzz/corpus/TARGET) only seeds it. The stable run that CI does is
# part of `just test`: `CAPLAB_FUZZ_SECS=600 cargo test -p caplab-fuzz --test fuzz` runs it longer
# (docs/reliability.md).
fuzz TARGET SECS="60":
    mkdir -p fuzz/artifacts/{{TARGET}} "${TMPDIR:-/tmp}/caplab-fuzz-corpus/{{TARGET}}"
    cd fuzz && cargo +nightly fuzz run -O {{TARGET}} "${TMPDIR:-/tmp}/caplab-fuzz-corpus/{{TARGET}}" corpus/{{TARGET}} -- -max_total_time={{SECS}} -rss_limit_mb=2048 -timeout=10 -max_len=65536

# Formatting check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# TensorBoard over every run (needs `pip install tensorboard`).
tensorboard DIR="runs":
    tensorboard --logdir {{DIR}}

# Parity with torchvision, open_clip and PyTorch (needs torch, torchvision and open_clip in
# PYTHON; not part of CI): whole-network encoder diffs (CNNs, ViT-B/16, CLIP ViT-B/32), then the
# fixtures regenerated (seeded; `git diff` shows any drift) and checked.
parity PYTHON="python3":
    {{PYTHON}} scripts/parity/encoders.py
    {{PYTHON}} scripts/parity/vit.py parity
    {{PYTHON}} scripts/parity/rnn.py
    {{PYTHON}} scripts/parity/attention.py
    {{PYTHON}} scripts/parity/transformer.py
    {{PYTHON}} scripts/parity/vit.py fixtures
    cargo test -p caplab-models --test models --test transformer --test vit

# The ablation study (decoder and attention sweeps, 3 seeds; beam 3/5 evals), then `caplab compare`.
ablations *ARGS:
    bash scripts/ablations.sh {{ARGS}}

# The Transformer-decoder and ViT ablation (LSTM + attention vs Transformer on resnet_tiny and
# vit_tiny, 3 seeds), then `caplab compare` into runs/ablations-transformer/ (docs/ablations.md).
ablations-transformer *ARGS:
    bash scripts/ablations_transformer.sh {{ARGS}}

# The Python package (drop-in for pycocoevalcap's scorers) as a wheel in target/wheels
# (needs `pip install maturin`); install it with `pip install target/wheels/caplab_metrics-*.whl`.
wheel *ARGS:
    maturin build --release -m crates/metrics-py/Cargo.toml -o target/wheels {{ARGS}}
