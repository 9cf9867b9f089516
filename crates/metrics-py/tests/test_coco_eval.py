#!/usr/bin/env python3
"""caplab_metrics is a drop-in replacement for pycocoevalcap: run pycocoevalcap's own COCOEvalCap flow
(pycocotools COCO objects, COCOEvalCap.evaluate()) once with pycocoevalcap's scorers and once with
caplab_metrics' substituted, and assert the `eval` dictionaries and every per-image score are identical;
time both in this process. Also checks return types and shapes of each class against pycocoevalcap's.

Usage: python crates/metrics-py/tests/test_coco_eval.py [--images 1000]
Needs pycocoevalcap==1.2 (with java) and the caplab_metrics wheel installed in the same interpreter.
SPICE needs a download and does not run offline: it is replaced by a stub on both sides.

Identical means equal as Python floats (`==`), METEOR included (the jar prints its doubles as decimal text
that parses back to the same double).
"""
import argparse, contextlib, io, json, os, random, shutil, sys, tempfile, time

import numpy as np
import pycocoevalcap.eval as coco_eval
from pycocoevalcap.bleu.bleu import Bleu as PyBleu
from pycocoevalcap.cider.cider import Cider as PyCider
from pycocoevalcap.meteor.meteor import Meteor as PyMeteor
from pycocoevalcap.rouge.rouge import Rouge as PyRouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer as PyPTBTokenizer
from pycocotools.coco import COCO

import caplab_metrics

SUBJ = ["a man", "A woman", "a young boy", "two girls", "a dog", "A black cat", "an elderly couple", "a group of people",
        "a skateboarder", "a surfer", "a baseball player", "a little girl", "three men", "a brown horse", "a giraffe"]
VERB = ["riding", "holding", "standing next to", "sitting on", "looking at", "walking along", "playing with",
        "eating", "carrying", "jumping over", "lying on", "running through", "flying", "cutting", "watching"]
OBJ = ["a bicycle", "a red umbrella", "the beach", "a wooden bench", "a large pizza", "a frisbee", "the street",
       "a kite", "a surfboard", "a grassy field", "a snowy hill", "a plate of food", "a tennis racket", "the water"]
TAIL = ["", " in the park", " on a sunny day", " near a building", " at night", " in the rain", " next to a car",
        ", smiling", " while people watch", " in front of a crowd"]
# Raw-COCO-style messes: periods inside tokens, doubled periods, the METEOR separator, abbreviations.
MESS = [".next to it", ".A bus", ".s", "..", " |||", " ||| with cheese |||", " No. 1 bus", " U.S.A. e.g. 3.5 km",
        " 1,000 people", " #1 @ home", " Mr. Smith's dog", " (a man)", " don't", " $5.50", " 12:30pm", "!!!",
        " café", " well-known", "...", " 'em", " o'clock"]


def caption(rng):
    s = f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}{rng.choice(TAIL)}"
    if rng.random() < 0.3:
        s += rng.choice(MESS)
    return s + rng.choice(["", ".", " ."])


class NoSpice:
    def compute_score(self, gts, res):
        return 0.0, [0.0] * len(gts)

    def method(self):
        return "SPICE"


def run_flow(ann_file, res_file, scorers):
    """COCOEvalCap.evaluate() with the module's scorer names bound to `scorers`."""
    saved = {k: getattr(coco_eval, k) for k in scorers}
    for k, v in scorers.items():
        setattr(coco_eval, k, v)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(ann_file)
            coco_res = coco.loadRes(res_file)
            ev = coco_eval.COCOEvalCap(coco, coco_res)
            ev.params["image_id"] = coco_res.getImgIds()
            t0 = time.time()
            ev.evaluate()
            seconds = time.time() - t0
    finally:
        for k, v in saved.items():
            setattr(coco_eval, k, v)
    return ev, seconds


def check_types(py, ours, what):
    assert type(py) is type(ours), f"{what}: {type(py)} vs {type(ours)}"
    if isinstance(py, np.ndarray):
        assert py.shape == ours.shape and py.dtype == ours.dtype, f"{what}: {py.shape} {ours.shape}"
    elif isinstance(py, (list, tuple)):
        assert len(py) == len(ours), f"{what}: {len(py)} vs {len(ours)}"
        for k, (a, b) in enumerate(zip(py, ours)):
            check_types(a, b, f"{what}[{k}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    a = ap.parse_args()
    rng = random.Random(2024)
    wd = tempfile.mkdtemp(prefix="caplab-py-test-")
    images, anns, res = [], [], []
    for i in range(a.images):
        images.append({"id": i})
        for _ in range(rng.choice([4, 5, 5, 6])):
            anns.append({"image_id": i, "id": len(anns), "caption": caption(rng)})
        res.append({"image_id": i, "caption": caption(rng)})
    res[0]["caption"] = "A pizza ||| with cheese |||"
    ann_file, res_file = os.path.join(wd, "refs.json"), os.path.join(wd, "res.json")
    json.dump({"images": images, "annotations": anns, "type": "captions", "info": {}, "licenses": []},
              open(ann_file, "w"))
    json.dump(res, open(res_file, "w"))

    py_ev, py_s = run_flow(ann_file, res_file, {"Spice": NoSpice})
    ours = {"PTBTokenizer": caplab_metrics.PTBTokenizer, "Bleu": caplab_metrics.Bleu,
            "Meteor": caplab_metrics.Meteor, "Rouge": caplab_metrics.Rouge, "Cider": caplab_metrics.Cider,
            "Spice": NoSpice}
    cl_ev, cl_s = run_flow(ann_file, res_file, ours)
    # Again, with METEOR's resource tables now cached (the first run may have built them).
    _, cl_warm_s = run_flow(ann_file, res_file, ours)

    assert py_ev.eval.keys() == cl_ev.eval.keys(), (py_ev.eval.keys(), cl_ev.eval.keys())
    bad = []
    for m, v in py_ev.eval.items():
        w = cl_ev.eval[m]
        if w != v:
            bad.append(f"corpus {m}: caplab {w!r} vs pycocoevalcap {v!r}")
    assert py_ev.imgToEval.keys() == cl_ev.imgToEval.keys()
    n_img = 0
    for img, scores in py_ev.imgToEval.items():
        for m, v in scores.items():
            w = cl_ev.imgToEval[img][m]
            if w != v:
                bad.append(f"image {img} {m}: caplab {w!r} vs pycocoevalcap {v!r}")
        n_img += 1
    assert not bad, f"{len(bad)} differences:\n" + "\n".join(bad[:30])

    # Tokenizer output and each scorer's return types/shapes, class by class.
    gts = {i: [{"caption": c["caption"]} for c in anns if c["image_id"] == i] for i in range(20)}
    rs = {r["image_id"]: [{"caption": r["caption"]}] for r in res[:20]}
    with contextlib.redirect_stdout(io.StringIO()):
        pg, pr = PyPTBTokenizer().tokenize(gts), PyPTBTokenizer().tokenize(rs)
    cg, cr = caplab_metrics.PTBTokenizer().tokenize(gts), caplab_metrics.PTBTokenizer().tokenize(rs)
    assert (pg, pr) == (cg, cr)
    for py_cls, cl_cls in [(PyBleu, caplab_metrics.Bleu), (PyMeteor, caplab_metrics.Meteor),
                           (PyRouge, caplab_metrics.Rouge), (PyCider, caplab_metrics.Cider)]:
        with contextlib.redirect_stdout(io.StringIO()) as out_py:
            p = py_cls().compute_score(pg, pr)
        with contextlib.redirect_stdout(io.StringIO()) as out_cl:
            c = cl_cls().compute_score(cg, cr)
        check_types(p, c, py_cls.__name__)
        assert out_py.getvalue() == out_cl.getvalue(), (out_py.getvalue(), out_cl.getvalue())
        assert py_cls().method() == cl_cls().method()

    print(f"{a.images} images, {len(anns)} references: COCOEvalCap eval identical "
          f"({', '.join(f'{k} {v:.4f}' for k, v in cl_ev.eval.items() if k != 'SPICE')}), "
          f"{n_img} images' per-image scores identical")
    print(f"COCOEvalCap.evaluate(): pycocoevalcap {py_s:.2f} s, caplab_metrics {cl_s:.3f} s first run "
          f"({py_s / cl_s:.0f}x), {cl_warm_s:.3f} s second run ({py_s / cl_warm_s:.0f}x)")
    print(f"signature {caplab_metrics.signature(caplab_metrics.default_meteor_dir())}")
    shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
