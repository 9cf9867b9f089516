# caplab tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Train, evaluate and report the experiment a spec describes.
run SPEC *ARGS:
    cargo run --quiet --bin caplab -- run {{SPEC}} {{ARGS}}

# The test suite (what CI runs).
test:
    cargo test --workspace --no-fail-fast

# Benchmarks: `just bench metrics`, `just bench rnn` (see README for figures).
bench WHAT="all":
    bash scripts/bench.sh {{WHAT}}

# Format all crates.
fmt:
    cargo fmt --all

# Formatting check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# TensorBoard over every run (needs `pip install tensorboard`).
tensorboard DIR="runs":
    tensorboard --logdir {{DIR}}

# Encoder parity against torchvision (needs torch + torchvision in a venv; not part of CI).
parity PYTHON="python3":
    {{PYTHON}} scripts/parity/encoders.py
    {{PYTHON}} scripts/parity/rnn.py --check
