#!/usr/bin/env python3
"""Benchmark caplab-metrics against pycocoevalcap on a generated 5 000-image, 5-reference set.

Usage:
  python3 scripts/metrics/bench.py --caplab PATH [--images 5000] [--python PY] [--workdir DIR]
                                   [--meteor-dir DIR] [--repeat N]

PATH is either the `caplab` binary (run as `caplab score --refs R --results S --out O`) or the
`score_bench` example binary (`cargo build --release -p caplab-metrics --example score_bench`,
then /var/tmp/caplab-target/release/examples/score_bench), which also reports tokenisation and
scoring times separately. PY must have pycocoevalcap installed (default: this interpreter).
Prints a table of seconds and ratios (pycocoevalcap / caplab). With --meteor-dir (the directory of
meteor-1.5.jar, e.g. <site-packages>/pycocoevalcap/meteor) and the score_bench binary, full METEOR 1.5
is also timed: pycocoevalcap's Meteor (JVM start, resource loading, scoring) against caplab's (resource
loading, scoring), and the corpus scores are compared. METEOR is not part of the "all" rows.
With --repeat N, caplab runs N times and each of its times is the best of the N runs (pycocoevalcap
runs once: it takes seconds, so scheduling noise matters far less).
"""
import argparse, json, os, random, subprocess, sys, tempfile, time

SUBJ = ["a man", "a woman", "a young boy", "two girls", "a dog", "a black cat", "an elderly couple", "a group of people",
        "a skateboarder", "a surfer", "a baseball player", "a little girl", "three men", "a brown horse", "a giraffe",
        "a zebra", "a chef", "a police officer", "a toddler", "a flock of birds"]
VERB = ["riding", "holding", "standing next to", "sitting on", "looking at", "walking along", "playing with",
        "eating", "carrying", "jumping over", "lying on", "running through", "flying", "cutting", "watching"]
OBJ = ["a bicycle", "a red umbrella", "the beach", "a wooden bench", "a large pizza", "a frisbee", "the street",
       "a kite", "a surfboard", "a grassy field", "a snowy hill", "a plate of food", "a tennis racket", "the water",
       "a laptop", "a cake", "a train", "a bus", "a clock tower", "a sandwich"]
TAIL = ["", " in the park", " on a sunny day", " near a building", " at night", " in the rain", " next to a car",
        ", smiling", " while people watch", " in front of a crowd", " on a city street", " in a kitchen"]


def caption(rng):
    s = f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}{rng.choice(TAIL)}{rng.choice(['', '.', ' .'])}"
    return s[0].upper() + s[1:] if rng.random() < 0.7 else s


PY_BENCH = r'''
import json, sys, time
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider
refs = json.load(open(sys.argv[1]))
res = json.load(open(sys.argv[2]))
gts = {}
for a in refs["annotations"]:
    gts.setdefault(a["image_id"], []).append({"caption": a["caption"]})
rs = {r["image_id"]: [{"caption": r["caption"]}] for r in res}
t = {}
t0 = time.time(); tok = PTBTokenizer(); g = tok.tokenize(gts); r = tok.tokenize(rs); t["tokenize"] = time.time() - t0
out = {}
for name, sc in [("BLEU", Bleu(4)), ("ROUGE-L", Rouge()), ("CIDEr", Cider())]:
    t0 = time.time(); s, _ = sc.compute_score(g, r, verbose=0) if name == "BLEU" else sc.compute_score(g, r); t[name] = time.time() - t0
    out[name] = s
t["all"] = t["tokenize"] + t["BLEU"] + t["ROUGE-L"] + t["CIDEr"]
if len(sys.argv) > 3:
    from pycocoevalcap.meteor.meteor import Meteor
    t0 = time.time(); m = Meteor(); s, _ = m.compute_score(g, r); t["METEOR"] = time.time() - t0
    out["METEOR"] = s
print(json.dumps({"times": t, "scores": out}))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caplab", required=True)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--meteor-dir", default=None)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    wd = a.workdir or tempfile.mkdtemp(prefix="caplab-bench-")
    os.makedirs(wd, exist_ok=True)
    rng = random.Random(7)
    images, anns, res = [], [], []
    for i in range(a.images):
        images.append({"id": i})
        for _ in range(5):
            anns.append({"image_id": i, "id": len(anns), "caption": caption(rng)})
        res.append({"image_id": i, "caption": caption(rng)})
    refs_p, res_p = os.path.join(wd, "refs.json"), os.path.join(wd, "results.json")
    json.dump({"images": images, "annotations": anns}, open(refs_p, "w"))
    json.dump(res, open(res_p, "w"))

    py_p = os.path.join(wd, "py_bench.py")
    open(py_p, "w").write(PY_BENCH)
    t0 = time.time()
    py_cmd = [a.python, py_p, refs_p, res_p] + (["meteor"] if a.meteor_dir else [])
    py = json.loads(subprocess.run(py_cmd, check=True, capture_output=True, text=True).stdout)
    py_wall = time.time() - t0

    is_example = os.path.basename(a.caplab).startswith("score_bench")
    cmd = [a.caplab, refs_p, res_p] + ([a.meteor_dir] if a.meteor_dir else []) if is_example else [a.caplab, "score", "--refs", refs_p, "--results", res_p,
                                                        "--out", os.path.join(wd, "caplab.json")]
    rs, rs_wall = {}, None
    for _ in range(max(1, a.repeat)):
        t0 = time.time()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        wall = time.time() - t0
        rs_wall = wall if rs_wall is None else min(rs_wall, wall)
        run = json.loads(out.strip().splitlines()[-1]) if is_example else {}
        # Best of the runs for every time; scores are the same in every run.
        for k, v in run.items():
            if k.endswith("_s") and k in rs:
                rs[k] = min(rs[k], v)
            elif k == "meteor" and isinstance(v, dict) and isinstance(rs.get(k), dict):
                rs[k] = {mk: (min(rs[k][mk], mv) if mk.endswith("_s") else mv) for mk, mv in v.items()}
            else:
                rs[k] = v

    pt = py["times"]
    print(f"{a.images} images x 5 refs; workdir {wd}; caplab best of {max(1, a.repeat)}")
    print(f"{'phase':<22}{'pycocoevalcap s':>16}{'caplab s':>12}{'ratio':>10}")
    rows = [("tokenize", pt["tokenize"], rs.get("tokenize_s")),
            ("BLEU-1..4", pt["BLEU"], None), ("ROUGE-L", pt["ROUGE-L"], None), ("CIDEr", pt["CIDEr"], None),
            ("BLEU+ROUGE+CIDEr", pt["BLEU"] + pt["ROUGE-L"] + pt["CIDEr"], rs.get("score_s")),
            ("all (in process)", pt["all"], rs.get("evaluate_s")),
            ("all (process wall)", py_wall, rs_wall)]
    for name, p, r in rows:
        rtxt = f"{r:12.4f}" if r is not None else f"{'(in all)':>12}"
        ratio = f"{p / r:9.1f}x" if r else f"{'':>10}"
        print(f"{name:<22}{p:16.3f}{rtxt}{ratio}")
    cm = rs.get("meteor")
    if a.meteor_dir and cm:
        p = pt["METEOR"]
        print(f"{'METEOR (load+score)':<22}{p:16.3f}{cm['all_s']:12.4f}{p / cm['all_s']:9.1f}x")
        print(f"{'METEOR (score only)':<22}{'':>16}{cm['score_s']:12.4f}   (caplab load {cm['load_s']:.3f} s)")
        print("METEOR corpus check: caplab", cm["corpus"], "jar", py["scores"]["METEOR"],
              "diff", cm["corpus"] - py["scores"]["METEOR"])
    else:
        print("METEOR: not benchmarked (pass --meteor-dir with the score_bench binary)")
    if rs.get("corpus"):
        py_s = py["scores"]
        print("corpus check:", {k: (rs["corpus"][f"BLEU-{n+1}"] - py_s["BLEU"][n]) for n, k in enumerate(["B1", "B2", "B3", "B4"])},
              "ROUGE-L", rs["corpus"]["ROUGE-L"] - py_s["ROUGE-L"], "CIDEr", rs["corpus"]["CIDEr"] - py_s["CIDEr"])


if __name__ == "__main__":
    main()
