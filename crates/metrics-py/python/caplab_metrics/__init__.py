"""pycocoevalcap's scorers with identical numbers, in Rust (caplab-metrics).

A drop-in replacement: the classes have pycocoevalcap 1.2's interfaces and return values.

    # from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    # from pycocoevalcap.bleu.bleu import Bleu  ... becomes:
    from caplab_metrics import PTBTokenizer, Bleu, Meteor, Rouge, Cider

* ``PTBTokenizer().tokenize({id: [{"caption": str}, ...]})`` -> ``{id: [tokenized str, ...]}`` (all captions
  as one run of Stanford CoreNLP 3.4.1's PTBLexer, ``-preserveLines -lowerCase``, punctuation removed);
* ``Bleu(4).compute_score(gts, res)`` -> ``([b1, b2, b3, b4], [[per image], x4])`` (lists of floats);
* ``Meteor().compute_score(gts, res)`` -> ``(float, [per image])``: full METEOR 1.5 (exact, stem, synonym,
  paraphrase) with the resources of ``meteor-1.5.jar`` and ``data/paraphrase-en.gz``, from ``meteor_dir``,
  else ``$CAPLAB_METEOR_DIR``, else the installed pycocoevalcap's ``meteor`` directory (the resources are
  not shipped in this package). No JVM: the tables are cached on disk in a binary form and memory-mapped
  (``$CAPLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/caplab``, else ``~/.cache/caplab``);
* ``Rouge().compute_score(gts, res)`` -> ``(numpy.float64, numpy.ndarray)``;
* ``Cider().compute_score(gts, res)`` -> ``(numpy.float64, numpy.ndarray)`` (CIDEr-D, sigma 6, document
  frequencies of the evaluated references).

``gts`` maps each image id to its tokenized references, ``res`` to a one-element list with its tokenized
candidate; images come out in ``gts``'s key order, as in pycocoevalcap. ``signature(meteor_dir)`` gives the
sacrebleu-style line describing how the scores are computed.
"""
import os

import numpy as np

from . import _native

__version__ = _native.__version__
__all__ = ["PTBTokenizer", "Bleu", "Meteor", "Rouge", "Cider", "signature", "default_meteor_dir"]


def default_meteor_dir():
    """$CAPLAB_METEOR_DIR, else the installed pycocoevalcap's meteor directory, else None."""
    d = os.environ.get("CAPLAB_METEOR_DIR")
    if d:
        return d
    try:
        import pycocoevalcap  # noqa: PLC0415
    except ImportError:
        return None
    d = os.path.join(list(pycocoevalcap.__path__)[0], "meteor")
    return d if os.path.isfile(os.path.join(d, "meteor-1.5.jar")) else None


def signature(meteor_dir=None):
    """e.g. 'tok:ptb-3.4.1|meteor:full-1.5+1f2e3d4c|cider:D,sigma=6,df=corpus|bleu:closest|caplab-metrics:0.1.0'."""
    return _native.signature(meteor_dir)


def _checked(gts, res):
    # The same checks as pycocoevalcap's scorers.
    assert gts.keys() == res.keys()
    ids = list(gts.keys())
    refs, cands = [], []
    for i in ids:
        hypo, ref = res[i], gts[i]
        assert type(hypo) is list
        assert len(hypo) == 1
        assert type(ref) is list
        assert len(ref) > 0
        refs.append([str(r) for r in ref])
        cands.append(str(hypo[0]))
    return refs, cands


class PTBTokenizer:
    """pycocoevalcap's PTBTokenizer without Java."""

    def tokenize(self, captions_for_image):
        image_id = [k for k, v in captions_for_image.items() for _ in range(len(v))]
        sentences = [c["caption"].replace("\n", " ") for k, v in captions_for_image.items() for c in v]
        out = {}
        for k, line in zip(image_id, _native.tokenize(sentences)):
            out.setdefault(k, []).append(line)
        return out


class Bleu:
    def __init__(self, n=4):
        assert 1 <= n <= 4, "caplab_metrics.Bleu computes BLEU-1..4"
        self._n = n

    def compute_score(self, gts, res, verbose=1):
        refs, cands = _checked(gts, res)
        corpus, per_image, totals, _, _ = _native.score(refs, cands)
        if verbose > 0:
            # pycocoevalcap prints its summed statistics and the length ratio.
            n = self._n
            comps = {"testlen": int(totals[0]), "reflen": int(totals[1]),
                     "guess": [int(g) for g in totals[2:2 + n]], "correct": [int(c) for c in totals[6:6 + n]]}
            print(comps)
            print("ratio:", (totals[0] + 1e-15) / (totals[1] + 1e-9))
        return corpus[:self._n], per_image[:self._n]

    def method(self):
        return "Bleu"


class Meteor:
    def __init__(self, meteor_dir=None):
        self.meteor_dir = meteor_dir or default_meteor_dir()
        if self.meteor_dir is None:
            raise RuntimeError("METEOR needs meteor-1.5.jar and data/paraphrase-en.gz: pass meteor_dir, set "
                               "CAPLAB_METEOR_DIR, or pip install pycocoevalcap")

    def compute_score(self, gts, res):
        refs, cands = _checked(gts, res)
        score, scores, _ = _native.meteor(refs, cands, self.meteor_dir)
        return score, scores

    def method(self):
        return "METEOR"


def _mean_and_scores(gts, res, which):
    # pycocoevalcap's Rouge and Cider: (np.mean(np.array(scores)), np.array(scores)).
    refs, cands = _checked(gts, res)
    score = np.array(_native.score(refs, cands)[which])
    return np.mean(score), score


class Rouge:
    def compute_score(self, gts, res):
        return _mean_and_scores(gts, res, 3)

    def method(self):
        return "Rouge"


class Cider:
    def __init__(self, test=None, refs=None, n=4, sigma=6.0):
        assert n == 4 and sigma == 6.0, "caplab_metrics.Cider computes CIDEr-D with n=4, sigma=6"

    def compute_score(self, gts, res):
        return _mean_and_scores(gts, res, 4)

    def method(self):
        return "CIDEr"
