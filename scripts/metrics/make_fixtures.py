#!/usr/bin/env python3
"""Generate golden fixtures for caplab-metrics with the REAL pycocoevalcap.

Usage: python3 scripts/metrics/make_fixtures.py [--out crates/metrics/tests/fixtures]
Needs `pip install pycocoevalcap` (and java). Writes:
  tokenizer.json  raw caption -> pycocoevalcap PTBTokenizer output (one Java run per case)
  realistic.json  seeded realistic captions: refs, cands, tokenised text, corpus + per-image scores
  edge.json       edge cases: same content
Image ids are zero-padded strings so that sorted order (caplab's order) equals insertion order.
"""
import argparse, json, os, random, subprocess, sys, tempfile

from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider
import pycocoevalcap.tokenizer.ptbtokenizer as ptbmod

TOKENIZER_CASES = [
    "A man's hat.", "I don't know.", "They can't, won't, isn't.", "I'm here, they've gone, we'll see, I'd go, we're done.",
    "cannot gonna wanna gimme 'tis y'all rock'n'roll", "o'neil o'clock '90s 'em", "the dogs' bowls", "It’s a dog’s life",
    "A well-known six-year-old e-mail x-ray 2-3 -5", "a - b -- c --- d – e — f", "soft\u00adhyphen",
    "He said \"hello\" and “bye”", "'single' ‘curly’ `tick'", "(a) [b] {c}", "wait... what.. ok.... …",
    "$5.50 €5 £20 50% #1 12:30pm &amp; AT&T at&t", "3.5 1,000 10:30 1/2 24/7 3x4 ½", "2 1/2 cups",
    "u.s.a. e.g. mr. no. 5 p.m. A.", "A dog.", "Café naïve Straße ΣΟΦΙΑ русский 中文", "dog😀cat 😀",
    "a\u00a0b\u200bc\ufeffd", "tab\there", "line\nbreak", "", "   ", "...", "!!! ?? ?! !", "Wow!!! Really?!",
    "A MAN RIDING A HORSE", "colour grey theatre", "the end a.", "x no.", "dog.,cat", "www.google.com foo@bar.com",
    "x*y a+b a=b a/b ~ ^ @ _ ° ×", "<b>bold</b>", "ma'am", "don’t", "he ain't", "'til then", "D'Angelo L'Oreal",
]

SUBJ = ["a man", "a woman", "a young boy", "two girls", "a dog", "a black cat", "an elderly couple", "a group of people",
        "a skateboarder", "a surfer", "a baseball player", "a little girl", "three men", "a brown horse", "a giraffe"]
VERB = ["riding", "holding", "standing next to", "sitting on", "looking at", "walking along", "playing with",
        "eating", "carrying", "jumping over", "lying on", "running through"]
OBJ = ["a bicycle", "a red umbrella", "the beach", "a wooden bench", "a large pizza", "a frisbee", "the street",
       "a kite", "a surfboard", "a grassy field", "a snowy hill", "a plate of food", "a tennis racket", "the water"]
TAIL = ["", " in the park", " on a sunny day", " near a building", " at night", " in the rain", " next to a car",
        ", smiling", " while people watch", " in front of a crowd"]
PUNCT = ["", ".", " .", "!", "..."]


def caption(rng):
    s = f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}{rng.choice(TAIL)}{rng.choice(PUNCT)}"
    if rng.random() < 0.6:
        s = s[0].upper() + s[1:]
    if rng.random() < 0.05:
        s = s.replace("a ", "a very ", 1)
    if rng.random() < 0.05:
        s = s.replace("man", "man's friend", 1)
    return s


def realistic(rng, n_images=300):
    refs, cands = {}, {}
    for i in range(n_images):
        k = f"{i:06d}"
        refs[k] = [caption(rng) for _ in range(rng.choice([4, 5, 5, 5, 6]))]
        r = rng.random()
        cands[k] = rng.choice(refs[k]) if r < 0.1 else caption(rng)
    return refs, cands


def edge(rng):
    long_cand = " ".join(caption(rng) for _ in range(12))
    cases = [
        (["A man riding a horse.", "A person on a horse."], ""),                      # empty candidate
        (["A dog.", "A dog runs."], "dog"),                                              # single word
        (["A cat on a mat.", "The cat sits on the mat."], long_cand),                    # very long candidate
        (["A red bus on the street.", "A bus driving down a road."], "A red bus on the street."),  # identical to a ref
        (["Two dogs play.", "Two dogs play.", "Two dogs play."], "Two dogs play."),      # duplicate refs
        (["...", "A bird."], "!!!"),                                                      # punctuation-only ref
        (["", "A plane in the sky."], ""),                                                # empty ref and cand
        # METEOR's separator in a candidate: the jar tokenises `|||` as `| | |`, which BLEU, ROUGE-L
        # and CIDEr score as words; meteor.py's `replace('|||', '')` never sees it after tokenisation.
        (["A pizza with cheese on a plate.", "A cheese pizza."], "A pizza ||| with cheese |||"),
        (["A pizza ||| with cheese.", "A pizza."], "A pizza with cheese"),
        # Raw COCO typos: a period inside a token with no space after it, doubled final periods.
        (["A display case.next to a wall.", "a street.A bus goes by", "two stair.s in a house"],
         "A display case next to a wall."),
        (["A man with hoses..", "A bird with wings.l", "bigelow.taken 11.01.2009 23:58."], "A man with hoses."),
        (["No. 1 bus, U.S.A. e.g. 3.5 km, 1,000 people, #1 @ home", "A bus in the U.S. The end."],
         "No. 1 bus in the U.S.A. e.g. 3.5 km"),
    ]
    for c in TOKENIZER_CASES:
        cases.append(([c, "A man's dog, well-known, at 12:30pm."], c))
    refs, cands = {}, {}
    for i, (r, c) in enumerate(cases):
        k = f"e{i:04d}"
        refs[k] = r
        cands[k] = c
    return refs, cands


def tokenize_each(cases):
    """Each case alone (last line of its Java run), as ptb_tokenize() models it."""
    out = []
    tok = PTBTokenizer()
    # One run for all cases would couple neighbours; the doc's case list is tokenised one by one.
    for c in cases:
        res = tok.tokenize({"x": [{"caption": c}]})
        out.append({"raw": c, "tokens": res["x"][0]})
    return out


def score(refs, cands):
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": cands[k]}] for k in refs})
    out = {"refs": refs, "cands": cands, "tok_refs": gts, "tok_cands": {k: v[0] for k, v in res.items()},
           "corpus": {}, "per_image": {k: {} for k in refs}}
    for scorer, names in [(Bleu(4), ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"]), (Rouge(), ["ROUGE-L"]), (Cider(), ["CIDEr"])]:
        s, per = scorer.compute_score(gts, res)
        if isinstance(s, list):
            for n, name in enumerate(names):
                out["corpus"][name] = float(s[n])
                for k, v in zip(refs.keys(), per[n]):
                    out["per_image"][k][name] = float(v)
        else:
            out["corpus"][names[0]] = float(s)
            for k, v in zip(refs.keys(), per):
                out["per_image"][k][names[0]] = float(v)
    try:
        from pycocoevalcap.meteor.meteor import Meteor
        m = Meteor()
        s, per = m.compute_score(gts, res)
        out["corpus"]["METEOR"] = float(s)
        for k, v in zip(refs.keys(), per):
            out["per_image"][k]["METEOR"] = float(v)
        del m
    except Exception as e:  # noqa: BLE001
        print(f"METEOR skipped: {e}", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/metrics/tests/fixtures")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(20240611)
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tokenize_each(TOKENIZER_CASES), f, ensure_ascii=False, indent=0)
    refs, cands = realistic(rng)
    with open(os.path.join(a.out, "realistic.json"), "w") as f:
        json.dump(score(refs, cands), f, ensure_ascii=False)
    refs, cands = edge(rng)
    with open(os.path.join(a.out, "edge.json"), "w") as f:
        json.dump(score(refs, cands), f, ensure_ascii=False)


if __name__ == "__main__":
    main()
