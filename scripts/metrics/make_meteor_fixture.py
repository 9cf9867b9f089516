#!/usr/bin/env python3
"""Score the tokenised captions of the existing fixtures with the METEOR 1.5 jar in
exact+stem mode (`-m "exact stem"`), talking to it exactly as pycocoevalcap's meteor.py does
(stdio, `-l en -norm`, SCORE lines then one EVAL line). Writes
crates/metrics/tests/fixtures/meteor_exact_stem.json.

Usage: python3 scripts/metrics/make_meteor_fixture.py --meteor-dir <site-packages>/pycocoevalcap/meteor
"""
import argparse
import json
import os
import subprocess


def run_jar(jar, modules, refs, cands, ids):
    cmd = ["java", "-jar", "-Xmx2G", jar, "-", "-", "-stdio", "-l", "en", "-norm"]
    if modules:
        cmd += ["-m", modules]
    p = subprocess.Popen(cmd, cwd=os.path.dirname(jar), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    stats = []
    for k in ids:
        hyp = cands[k].replace("|||", "").replace("  ", " ")
        p.stdin.write(" ||| ".join(["SCORE"] + refs[k] + [hyp]) + "\n")
        p.stdin.flush()
        stats.append(p.stdout.readline().strip())
    p.stdin.write(" ||| ".join(["EVAL"] + stats) + "\n")
    p.stdin.flush()
    per = [float(p.stdout.readline().strip()) for _ in ids]
    corpus = float(p.stdout.readline().strip())
    p.stdin.close()
    p.wait()
    return corpus, per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meteor-dir", required=True)
    ap.add_argument("--fixtures", default="crates/metrics/tests/fixtures")
    a = ap.parse_args()
    jar = os.path.join(os.path.abspath(a.meteor_dir), "meteor-1.5.jar")
    out = {}
    for name in ["realistic.json", "edge.json"]:
        with open(os.path.join(a.fixtures, name)) as f:
            v = json.load(f)
        ids = list(v["refs"].keys())
        corpus, per = run_jar(jar, "exact stem", v["tok_refs"], v["tok_cands"], ids)
        out[name] = {"corpus": corpus, "per_image": dict(zip(ids, per))}
    with open(os.path.join(a.fixtures, "meteor_exact_stem.json"), "w") as f:
        json.dump(out, f, indent=0)


if __name__ == "__main__":
    main()
