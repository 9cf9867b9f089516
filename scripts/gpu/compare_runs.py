#!/usr/bin/env python3
"""Whether a killed-and-resumed caplab run equals an uninterrupted one (scripts/gpu/check.sh).

Compares report.json's outcome keys (as tests/cli.rs `outcome` does: test metrics, epochs,
best epoch, samples, …; not timings or paths) and captions.json byte for byte, and the number
of history.jsonl lines. Writes a JSON verdict to OUT; exits 1 when they differ, printing each
differing key (GPU kernels with atomics could break bit-identity: the difference is the figure).
Usage: compare_runs.py WHOLE_RUN RESUMED_RUN OUT.json
"""

import json
import sys

KEYS = ["test", "epochs", "best_epoch", "cider_over_blind", "samples", "diagnostics",
        "vocab_size", "split_sizes"]


def main() -> int:
    whole, resumed, out = sys.argv[1:4]
    ra = json.load(open(f"{whole}/report.json"))
    rb = json.load(open(f"{resumed}/report.json"))
    differ = [k for k in KEYS if ra.get(k) != rb.get(k)]
    same_captions = open(f"{whole}/captions.json").read() == open(f"{resumed}/captions.json").read()
    lines = [sum(1 for _ in open(f"{r}/history.jsonl")) for r in (whole, resumed)]
    ok = not differ and same_captions and lines[0] == lines[1]
    verdict = {"ok": ok, "differing_report_keys": differ, "captions_identical": same_captions,
               "history_lines": lines,
               "test_whole": ra.get("test"), "test_resumed": rb.get("test")}
    with open(out, "w") as f:
        json.dump(verdict, f, indent=2)
    print(f"resumed run identical to the uninterrupted one: {'yes' if ok else 'NO'}"
          + ("" if ok else f" (report keys {differ}, captions same: {same_captions}, "
             f"history lines {lines})"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
