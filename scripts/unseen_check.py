#!/usr/bin/env python3
"""Captions images a trained run never saw and scores them against the image-blind baseline.

A second synthetic set is generated with another seed (`caplab data synth`), captioned with
`caplab caption RUN_DIR --json`, and both the model's captions and the most frequent training
caption (the same for every image) are scored with `caplab score` against the new set's
references.

    python3 scripts/unseen_check.py CAPLAB_BINARY RUN_DIR [--images 300] [--seed 99]
"""
import argparse
import collections
import csv
import json
import os
import subprocess
import sys
import tempfile


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("caplab")
    ap.add_argument("run_dir")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args()

    spec_path = os.path.join(args.run_dir, "spec.toml")
    import tomllib

    with open(spec_path, "rb") as f:
        spec = tomllib.load(f)
    synth = spec["data"].get("synth", {})
    train_captions = os.path.join(spec["data"]["root"], "captions.txt")
    splits_path = os.path.join(spec["data"]["root"], "splits.json")
    with open(splits_path) as f:
        train_files = {im["filename"] for im in json.load(f)["images"] if im["split"] == "train"}

    with tempfile.TemporaryDirectory() as tmp:
        unseen = os.path.join(tmp, "unseen")
        subprocess.run(
            [args.caplab, "-q", "data", "synth", "--out", unseen, "--images", str(args.images),
             "--size", str(synth.get("size", 128)), "--seed", str(args.seed)],
            check=True, stdout=subprocess.DEVNULL)
        out = subprocess.run(
            [args.caplab, "-q", "caption", args.run_dir, os.path.join(unseen, "images"), "--json"],
            check=True, capture_output=True, text=True).stdout
        model = [json.loads(line) for line in out.splitlines() if line.strip()]
        for r in model:
            r["image_id"] = os.path.basename(r["image_id"])
        with open(train_captions, newline="") as f:
            counts = collections.Counter(
                row["caption"] for row in csv.DictReader(f) if row["image"] in train_files)
        frequent = counts.most_common(1)[0][0]
        blind = [{"image_id": r["image_id"], "caption": frequent} for r in model]
        scores = {}
        for name, results in [("model", model), ("blind: most frequent train caption", blind)]:
            res = os.path.join(tmp, "res.json")
            with open(res, "w") as f:
                json.dump(results, f)
            dst = os.path.join(tmp, "scores.json")
            subprocess.run(
                [args.caplab, "-q", "score", "--refs", os.path.join(unseen, "captions.txt"),
                 "--results", res, "--out", dst], check=True, stdout=subprocess.DEVNULL)
            with open(dst) as f:
                scores[name] = json.load(f)["corpus"]
    metrics = list(scores["model"].keys())
    print(f"{len(model)} unseen images (synth seed {args.seed}), run {args.run_dir}\n")
    print("| system | " + " | ".join(metrics) + " |")
    print("|---|" + "---|" * len(metrics))
    for name, s in scores.items():
        print(f"| {name} | " + " | ".join(f"{s[m]:.4f}" for m in metrics) + " |")
    ratio = scores["model"]["CIDEr"] / max(scores["blind: most frequent train caption"]["CIDEr"], 1e-12)
    print(f"\nCIDEr model / blind: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
