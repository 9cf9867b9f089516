"""Builds the WordPiece fixture: a small BERT-style `tokenizer.json` and the Python `tokenizers`
package's own output on messy captions, which caplab's WordPiece tokenizer must reproduce.

The tokenizer is built as `bert-base-uncased` is (BertNormalizer with lower-casing, accent
stripping and Chinese-character splitting, BertPreTokenizer, WordPiece with `##` continuation and
`[UNK]`, `[CLS] $A [SEP]` post-processing, WordPiece decoder), but its vocabulary is trained here
on the built-in dataset's words plus some Flickr-style captions, so it is small enough to commit
and can tokenise the built-in dataset for smoke runs of seed 001.

    python3 -m venv /tmp/tok && /tmp/tok/bin/pip install tokenizers==0.22.1
    /tmp/tok/bin/python scripts/parity/wordpiece.py crates/data/tests/fixtures/wordpiece

writes tokenizer.json and cases.json (caption → tokens, ids, decoded) into that directory.
`crates/data/tests/wordpiece.rs` checks caplab against cases.json.
"""

import itertools
import json
import pathlib
import random
import sys

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# The built-in dataset's words (crates/data/src/synth/captions.rs).
COLOURS = "red green blue yellow orange purple violet pink white black".split()
SHAPES = ["circle", "disk", "square", "box", "triangle", "star", "diamond", "rhombus",
          "cross", "plus sign", "ring", "donut"]
SIZES = ["small", "little", "tiny", "medium", "medium-sized", "mid-sized", "large", "big", "huge"]
BACKGROUNDS = ["gray", "grey", "white", "black", "dark", "beige", "tan", "teal", "dark green"]
RELATIONS = ["above", "over", "to the left of", "left of", "on the left of", "next to", "beside",
             "below", "under", "beneath", "to the right of", "right of", "on the right of"]
PLACES = ["in the top left corner", "in the upper right", "at the bottom", "near the top",
          "on the left side", "near the right", "in the center", "in the middle"]

FLICKR = [
    "A black dog is running through the grass .",
    "Two children are playing on the beach near the water .",
    "A man in a red shirt climbs a rock wall .",
    "A woman wearing sunglasses sits on a bench in the park .",
    "A brown and white dog jumps over a hurdle .",
    "People are walking down a busy city street at night .",
    "A little girl in a pink dress is smiling .",
    "Skiers are going down a snowy mountain slope .",
    "A boy kicks a soccer ball on a field .",
    "Two dogs are playing with a toy in the snow .",
]


def corpus(n, rng):
    def article(word):
        return "an" if word[0] in "aeiou" else "a"

    for _ in range(n):
        size, colour, shape = rng.choice(SIZES), rng.choice(COLOURS), rng.choice(SHAPES)
        first = f"{article(size)} {size} {colour} {shape}"
        kind = rng.randrange(3)
        if kind == 0:
            other = f"{rng.choice(COLOURS)} {rng.choice(SHAPES)}"
            yield f"{first} {rng.choice(RELATIONS)} {article(other)} {other}"
        elif kind == 1:
            yield f"{first} {rng.choice(PLACES)}"
        else:
            yield f"{first} on a {rng.choice(BACKGROUNDS)} background"
    yield from FLICKR


# Captions as people type them: case, punctuation, apostrophes, accents, digits, symbols, CJK,
# emoji, whitespace runs, words the vocabulary cannot hold.
CASES = [
    "A small red circle above a blue square",
    "a tiny violet rhombus in the upper right corner.",
    "A dog's red T-shirt, (wet)!",
    "  Two   DOGS\tplay\nin the snow  ",
    "Café crème at the Zürich Hauptbahnhof",
    "3 men, 2nd place; 100% effort — \"great\" job...",
    "The kids' toys aren't here",
    "a medium-sized teal donut next to an orange plus sign",
    "猫が座っている",
    "a 🐶 dog with a ☕ cup",
    "xylophones quizzically juxtaposed",
    "",
    "naïve résumé façade",
    "A man in a red shirt climbs a rock wall .",
]


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = WordPieceTrainer(vocab_size=400, min_frequency=1, special_tokens=SPECIALS)
    texts = list(corpus(3000, random.Random(7)))
    tok.train_from_iterator(texts, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tok.save(str(out / "tokenizer.json"))

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    cases = []
    for caption in CASES:
        enc = tok.encode(caption, add_special_tokens=False)
        cases.append({
            "caption": caption,
            "tokens": enc.tokens,
            "ids": enc.ids,
            "decoded": tok.decode(enc.ids, skip_special_tokens=True),
        })
    doc = {
        "tokenizers_version": __import__("tokenizers").__version__,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "cases": cases,
    }
    (out / "cases.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"vocab {doc['vocab_size']}, {len(cases)} cases -> {out}")


if __name__ == "__main__":
    main()
