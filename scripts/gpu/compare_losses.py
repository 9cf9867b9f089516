#!/usr/bin/env python3
"""bf16 vs f32 loss agreement of two caplab runs of the same spec (scripts/gpu/check.sh).

Reads RUN/history.jsonl of both runs; for every epoch compares train Loss and valid Loss.
Tolerance: |bf16 - f32| <= REL * |f32| with REL = 0.05 (5 %) by default: bf16 keeps 8 bits of
mantissa (about 2-3 significant digits), and two epochs of training let the two trajectories
drift apart; a broken half-precision path (overflowing softmax, a loss summed in bf16, NaN)
misses this by far more. Writes a JSON verdict to OUT and exits 1 when any epoch disagrees.
Usage: compare_losses.py F32_RUN BF16_RUN OUT.json [REL]
"""

import json
import math
import sys


def losses(run):
    rows = []
    with open(f"{run}/history.jsonl") as f:
        for line in f:
            r = json.loads(line)
            rows.append((r["epoch"], r["train"].get("Loss"), r.get("valid", {}).get("Loss")))
    return rows


def main() -> int:
    f32_run, bf16_run, out = sys.argv[1:4]
    rel = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
    a, b = losses(f32_run), losses(bf16_run)
    checks, ok = [], len(a) == len(b) and len(a) > 0
    for (ea, ta, va), (eb, tb, vb) in zip(a, b):
        for name, x, y in (("train", ta, tb), ("valid", va, vb)):
            if x is None or y is None:
                continue
            diff = abs(x - y)
            good = math.isfinite(y) and diff <= rel * abs(x)
            ok &= good and ea == eb
            checks.append({"epoch": ea, "loss": name, "f32": x, "bf16": y,
                           "rel_diff": diff / abs(x) if x else None, "ok": good})
    verdict = {"tolerance_rel": rel, "ok": ok, "epochs_f32": len(a), "epochs_bf16": len(b),
               "checks": checks}
    with open(out, "w") as f:
        json.dump(verdict, f, indent=2)
    for c in checks:
        print(f"epoch {c['epoch']} {c['loss']:5}: f32 {c['f32']:.5f} bf16 {c['bf16']:.5f} "
              f"rel {c['rel_diff']:.4f} {'ok' if c['ok'] else 'FAIL'}")
    print(f"bf16 vs f32 losses within {rel:.0%}: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
