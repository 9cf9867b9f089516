#!/usr/bin/env python3
"""pycocoevalcap agrees with `caplab score` on a results file that covers part of the references.

    python scripts/metrics/check_partial_score.py DIR

Reads DIR/refs.json (COCO annotations with "images"), DIR/half.json (COCO results for some of
those images) and DIR/scores.json (`caplab score --out`). Follows COCOEvalCap's flow: pycocotools'
COCO and loadRes (which asserts results ⊆ annotations), imgIds = cocoRes.getImgIds(), gts and res
of exactly those images, PTBTokenizer, then Bleu(4), Rouge and Cider (METEOR and SPICE are left
out). Exits non-zero if a corpus score differs from caplab's by more than 1e-9, or if caplab's
image counts are not the results' images and the uncovered references.
"""
import json
import sys
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocotools.coco import COCO


def main(d: Path) -> int:
    coco = COCO(str(d / "refs.json"))
    coco_res = coco.loadRes(str(d / "half.json"))
    caplab = json.loads((d / "scores.json").read_text())

    img_ids = coco_res.getImgIds()
    gts = {i: coco.imgToAnns[i] for i in img_ids}
    res = {i: coco_res.imgToAnns[i] for i in img_ids}
    tok = PTBTokenizer()
    gts, res = tok.tokenize(gts), tok.tokenize(res)

    failures = 0
    n_refs = len({a["image_id"] for a in coco.dataset["annotations"]})
    counts = (caplab["images_scored"], caplab["refs_without_result"], len(caplab["per_image"]))
    want = (len(img_ids), n_refs - len(img_ids), len(img_ids))
    if counts != want:
        print(f"image counts: caplab {counts}, pycocoevalcap {want}")
        failures += 1
    scorers = [(Bleu(4), ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"]), (Rouge(), ["ROUGE-L"]), (Cider(), ["CIDEr"])]
    for scorer, names in scorers:
        score, _ = scorer.compute_score(gts, res)
        scores = score if isinstance(score, list) else [score]
        for name, value in zip(names, scores):
            ours = caplab["corpus"][name]
            ok = abs(ours - value) <= 1e-9
            failures += not ok
            print(f"{name:10} caplab {ours:.12f}  pycocoevalcap {value:.12f}  {'ok' if ok else 'DIFFERENT'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
