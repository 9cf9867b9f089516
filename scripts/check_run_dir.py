#!/usr/bin/env python3
"""pycocoevalcap reproduces a caplab run's test metrics from the run directory alone.

    python scripts/check_run_dir.py RUN_DIR

Reads RUN_DIR/refs.json (COCO annotation format), RUN_DIR/captions.json (COCO results) and
RUN_DIR/report.json, scores the model's captions with pycocoevalcap's own tokenizer and scorers
(the COCOEvalCap sequence: PTBTokenizer, then Bleu(4), Meteor, Rouge, Cider) and exits non-zero if
any metric in the report differs by more than 1e-9. METEOR is checked when the report has the full
METEOR 1.5 (key "METEOR"); a report with METEOR(exact+stem) is checked for the other metrics.
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer


def main(run_dir: Path) -> int:
    refs = json.loads((run_dir / "refs.json").read_text())
    results = json.loads((run_dir / "captions.json").read_text())
    report = json.loads((run_dir / "report.json").read_text())
    model = report["test"][0]["metrics"]

    gts = defaultdict(list)
    for a in refs["annotations"]:
        gts[a["image_id"]].append({"caption": a["caption"]})
    res = {r["image_id"]: [{"caption": r["caption"]}] for r in results}
    tok = PTBTokenizer()
    gts, res = tok.tokenize(dict(gts)), tok.tokenize(res)

    scorers = [(Bleu(4), ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"]), (Rouge(), ["ROUGE-L"]), (Cider(), ["CIDEr"])]
    if "METEOR" in model:
        from pycocoevalcap.meteor.meteor import Meteor

        scorers.insert(1, (Meteor(), ["METEOR"]))
    failures = 0
    for scorer, names in scorers:
        score, _ = scorer.compute_score(gts, res)
        scores = score if isinstance(score, list) else [score]
        for name, value in zip(names, scores):
            ours = model[name]
            ok = abs(ours - value) <= 1e-9
            failures += not ok
            print(f"{name:10} caplab {ours:.12f}  pycocoevalcap {value:.12f}  {'ok' if ok else 'DIFFERENT'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
