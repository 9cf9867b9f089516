"""Reads a caplab TensorBoard event directory with TensorBoard's own reader and checks its scalars.

Usage: python scripts/check_tensorboard.py RUN_DIR/tensorboard
Exits non-zero unless the expected scalar tags are present with finite values.
"""
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EXPECTED = [
    "train/Loss",
    "train/Learning Rate",
    "epoch/train/Loss",
    "epoch/valid/Loss",
    "epoch/valid/BLEU-4",
    "epoch/valid/CIDEr",
]


def main() -> int:
    acc = EventAccumulator(sys.argv[1])
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    for tag in sorted(tags):
        values = [(e.step, round(e.value, 5)) for e in acc.Scalars(tag)]
        print(f"{tag}: {len(values)} points, first {values[:3]}")
    missing = [t for t in EXPECTED if t not in tags]
    if missing:
        print(f"missing scalar tags: {missing}", file=sys.stderr)
        return 1
    bad = [t for t in tags if not all(math.isfinite(e.value) for e in acc.Scalars(t))]
    if bad:
        print(f"non-finite values in {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
