#!/usr/bin/env python3
"""Benchmark caplab-metrics against pycocoevalcap as whole processes, all metrics with full METEOR.

Usage:
  python3 scripts/metrics/bench.py --caplab SCORE_BENCH [--meteor-dir DIR] [--images 5000]
                                   [--python PY] [--workdir DIR] [--repeat 3]

SCORE_BENCH is the example binary (`cargo build --release -p caplab-metrics --example score_bench`).
PY must have pycocoevalcap installed (default: this interpreter); DIR is the directory of meteor-1.5.jar
(default: the one inside PY's pycocoevalcap). The set: 5 000 generated images with 4-6 references each.

Each side runs as its own process doing everything a user's evaluation does, and the headline times
all of it: process start (interpreter and imports / executable), reading the two JSON files,
PTB-tokenising references and candidates, BLEU-1..4, METEOR 1.5 (exact, stem, synonym, paraphrase;
resources loaded in the process), ROUGE-L and CIDEr-D (per-image and corpus scores), writing the
corpus scores (one JSON line on stdout) and process exit. pycocoevalcap: one run (its two tokenizer
JVMs, the METEOR JVM with its resource loading, the Python scorers). caplab: a cold run (an empty
METEOR cache directory, so the synonym and paraphrase tables are parsed from the jar and
paraphrase-en.gz and the cache file written), then --repeat warm runs (tables memory-mapped from the
cache), best of them, on rayon's default pool (one thread per CPU; the number is printed), and
--repeat warm runs with RAYON_NUM_THREADS=1. caplab's scores do not depend on the thread count.
The headline is the ratio of whole-process wall-clock times; the per-phase table below it comes from
each process's own timers. The machine's load average is printed before and after: on a shared
machine the wall-clock ratio moves with it, the CPU-seconds ratio much less.
"""
import argparse, json, os, random, resource, shutil, statistics, subprocess, sys, tempfile, time

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
t_start = time.time()
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider
t = {}
t0 = time.time()
refs = json.load(open(sys.argv[1]))
res = json.load(open(sys.argv[2]))
gts = {}
for a in refs["annotations"]:
    gts.setdefault(a["image_id"], []).append({"caption": a["caption"]})
rs = {r["image_id"]: [{"caption": r["caption"]}] for r in res}
t["load"] = time.time() - t0
t0 = time.time(); tok = PTBTokenizer(); g = tok.tokenize(gts); r = tok.tokenize(rs); t["tokenize"] = time.time() - t0
out = {}
for name, sc in [("BLEU", Bleu(4)), ("METEOR", None), ("ROUGE-L", Rouge()), ("CIDEr", Cider())]:
    t0 = time.time()
    if name == "METEOR":
        sc = Meteor()
    s, _ = sc.compute_score(g, r, verbose=0) if name == "BLEU" else sc.compute_score(g, r)
    t[name] = time.time() - t0
    out[name] = s
t["total"] = time.time() - t_start
print(json.dumps({"times": t, "scores": out}))
'''


def run(cmd, env=None):
    """(wall seconds, CPU seconds user+sys of the process and its children, its JSON output)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    p = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caplab", required=True)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--meteor-dir", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    meteor_dir = a.meteor_dir or subprocess.run(
        [a.python, "-c", "import os, pycocoevalcap; print(os.path.join(list(pycocoevalcap.__path__)[0], 'meteor'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    wd = a.workdir or tempfile.mkdtemp(prefix="caplab-bench-")
    os.makedirs(wd, exist_ok=True)
    rng = random.Random(7)
    images, anns, res = [], [], []
    for i in range(a.images):
        images.append({"id": i})
        for _ in range(rng.choice([4, 5, 5, 5, 6])):
            anns.append({"image_id": i, "id": len(anns), "caption": caption(rng)})
        res.append({"image_id": i, "caption": caption(rng)})
    refs_p, res_p = os.path.join(wd, "refs.json"), os.path.join(wd, "results.json")
    json.dump({"images": images, "annotations": anns}, open(refs_p, "w"))
    json.dump(res, open(res_p, "w"))
    py_p = os.path.join(wd, "py_bench.py")
    open(py_p, "w").write(PY_BENCH)

    load = os.getloadavg()[0]
    py_wall, py_cpu, py = run([a.python, py_p, refs_p, res_p])

    cache = os.path.join(wd, "meteor-cache")
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, CAPLAB_CACHE_DIR=cache)
    cmd = [a.caplab, refs_p, res_p, meteor_dir]
    cold_wall, cold_cpu, cold = run(cmd, env)
    assert cold["meteor_cache"]["state"] == "built", cold["meteor_cache"]
    env1 = dict(env, RAYON_NUM_THREADS="1")
    warm_runs, one_runs = [], []
    for _ in range(max(1, a.repeat)):  # interleaved, so that both see the same load
        warm_runs.append(run(cmd, env))
        one_runs.append(run(cmd, env1))
    assert all(w["meteor_cache"]["state"] == "mapped" for _, _, w in warm_runs + one_runs)
    assert all(w["corpus"] == warm_runs[0][2]["corpus"] for _, _, w in warm_runs + one_runs)
    warm_wall, warm_cpu, warm = min(warm_runs, key=lambda x: x[0])
    warm_median = statistics.median(w for w, _, _ in warm_runs)
    one_wall, one_cpu, _ = min(one_runs, key=lambda x: x[0])
    one_median = statistics.median(w for w, _, _ in one_runs)
    load_after = os.getloadavg()[0]

    pt = py["times"]
    print(f"{a.images} images x 4-6 refs ({len(anns)} refs); BLEU-1..4, METEOR 1.5 full, ROUGE-L, CIDEr-D; "
          f"workdir {wd}")
    print(f"caplab: {cold['signature']}; {os.cpu_count()} CPUs, caplab on {warm['threads']} threads; "
          f"load average {load:.2f} before the runs, {load_after:.2f} after")
    print("Timed: process start, JSON read, PTB tokenisation, BLEU-1..4, METEOR 1.5 full (resources in-process), "
          "ROUGE-L, CIDEr-D, writing the scores, exit")
    print()
    print(f"WHOLE PROCESS with full METEOR: pycocoevalcap {py_wall:.2f} s, caplab warm {warm_wall:.3f} s "
          f"on {warm['threads']} threads (best of {len(warm_runs)}, median {warm_median:.3f} s) = "
          f"{py_wall / warm_wall:.0f}x; caplab cold {cold_wall:.2f} s = {py_wall / cold_wall:.0f}x; "
          f"caplab warm on 1 thread {one_wall:.3f} s (median {one_median:.3f} s) = {py_wall / one_wall:.0f}x")
    print(f"CPU seconds (user+sys, process and children): pycocoevalcap {py_cpu:.2f}, caplab warm {warm_cpu:.3f} "
          f"({py_cpu / warm_cpu:.0f}x), caplab warm 1 thread {one_cpu:.3f} ({py_cpu / one_cpu:.0f}x), "
          f"caplab cold {cold_cpu:.2f} ({py_cpu / cold_cpu:.0f}x)")
    print()
    print(f"{'phase':<34}{'pycocoevalcap s':>16}{'caplab warm s':>15}{'caplab cold s':>15}")
    rows = [
        ("read JSON", pt["load"], warm["load_s"], cold["load_s"]),
        ("PTB tokenize (refs + cands)", pt["tokenize"], warm["tokenize_s"], cold["tokenize_s"]),
        ("BLEU + ROUGE-L + CIDEr", pt["BLEU"] + pt["ROUGE-L"] + pt["CIDEr"], warm["score_s"], cold["score_s"]),
        ("METEOR resources (JVM+load / map)", None, warm["meteor_load_s"], cold["meteor_load_s"]),
        ("METEOR scoring", None, warm["meteor_score_s"], cold["meteor_score_s"]),
        ("METEOR (all)", pt["METEOR"], warm["meteor_load_s"] + warm["meteor_score_s"],
         cold["meteor_load_s"] + cold["meteor_score_s"]),
        ("in-process total", pt["total"], warm["total_s"], cold["total_s"]),
        ("process wall (incl. start/exit)", py_wall, warm_wall, cold_wall),
    ]
    for name, p, w, c in rows:
        ptxt = f"{p:16.3f}" if p is not None else f"{'(in METEOR)':>16}"
        print(f"{name:<34}{ptxt}{w:15.4f}{c:15.4f}")
    print(f"  pycocoevalcap per scorer: BLEU {pt['BLEU']:.2f} s, ROUGE-L {pt['ROUGE-L']:.2f} s, "
          f"CIDEr {pt['CIDEr']:.2f} s, METEOR {pt['METEOR']:.2f} s")
    ps = py["scores"]
    want = {"BLEU-1": ps["BLEU"][0], "BLEU-2": ps["BLEU"][1], "BLEU-3": ps["BLEU"][2], "BLEU-4": ps["BLEU"][3],
            "METEOR": ps["METEOR"], "ROUGE-L": ps["ROUGE-L"], "CIDEr": ps["CIDEr"]}
    diffs = {k: warm["corpus"][k] - v for k, v in want.items()}
    print("corpus score check (caplab - pycocoevalcap):", {k: f"{d:.1e}" for k, d in diffs.items()})
    # The bench's METEOR cache (about 126 MB) is only for these runs.
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
