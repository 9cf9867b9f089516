#!/usr/bin/env python3
"""The plain PyTorch training loop `just bench epoch` times caplab's baseline epoch against (issue 14).

What a researcher's notebook does with the baseline's data and sizes: torchvision's ResNet-18
(random weights, fc removed, 512-d pooled feature) trained end to end at 64 px, its feature
projected to the 128-d first step (Show and Tell), nn.Embedding(V, 128), nn.LSTM 128->256
(batch_first), nn.Linear 256->V, cross-entropy ignoring <pad>, Adam (lr 2e-3),
clip_grad_norm_(5.0). Samples are (image, caption) pairs, 32 per batch, shuffled: each image is
encoded once per caption (five times an epoch). Images are decoded, resized (bilinear, antialias)
and normalised once before timing, as caplab preloads them; the timed epoch is the training loop
only (no validation). Vocabulary: every training token (min_freq 1), captions cut to 24 tokens.

Usage: bench_epoch.py [--data data/shapes] [--threads N] [--arch resnet18] [--image-size 64]
                      [--batch 32] [--steps N (0: the whole epoch)]
"""

import argparse
import json
import random
import resource
import time
from pathlib import Path

import torch
import torchvision
from PIL import Image

PAD, SOS, EOS, UNK = 0, 1, 2, 3
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Captioner(torch.nn.Module):
    def __init__(self, arch: str, vocab: int, embed: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = getattr(torchvision.models, arch)(weights=None)
        width = self.encoder.fc.in_features
        self.encoder.fc = torch.nn.Identity()
        self.project = torch.nn.Linear(width, embed)
        self.embed = torch.nn.Embedding(vocab, embed, padding_idx=PAD)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, images: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        first = self.project(self.encoder(images)).unsqueeze(1)  # the image is the first step
        out, _ = self.lstm(torch.cat([first, self.embed(inputs)], 1))
        return self.head(out[:, 1:])


def load(data: Path, size: int, max_len: int):
    split = json.loads((data / "splits.json").read_text())
    train = [im for im in split["images"] if im["split"] == "train"]
    words = sorted({t for im in train for s in im["sentences"] for t in s["tokens"]})
    index = {w: i + 4 for i, w in enumerate(words)}
    images, pairs = [], []
    for i, im in enumerate(train):
        img = Image.open(data / "images" / im["filename"]).convert("RGB")
        img = img.resize((size, size), Image.BILINEAR)
        x = torchvision.transforms.functional.to_tensor(img)
        images.append(torchvision.transforms.functional.normalize(x, MEAN, STD))
        for s in im["sentences"]:
            ids = [index.get(t, UNK) for t in s["tokens"]][: max_len - 1]
            pairs.append((i, ids))
    return torch.stack(images), pairs, len(words) + 4


def batch_tensors(pairs):
    t = max(len(ids) for _, ids in pairs) + 1
    inputs = torch.full((len(pairs), t), PAD, dtype=torch.long)
    targets = torch.full((len(pairs), t), PAD, dtype=torch.long)
    for row, (_, ids) in enumerate(pairs):
        inputs[row, : len(ids) + 1] = torch.tensor([SOS] + ids)
        targets[row, : len(ids) + 1] = torch.tensor(ids + [EOS])
    return inputs, targets


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/shapes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-len", type=int, default=24)
    p.add_argument("--steps", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    random.seed(0)
    t0 = time.perf_counter()
    images, pairs, vocab = load(Path(a.data), a.image_size, a.max_len)
    print(f"loaded {images.shape[0]} images, {len(pairs)} pairs, vocabulary {vocab} "
          f"in {time.perf_counter() - t0:.1f} s")
    model = Captioner(a.arch, vocab).train()
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
    random.shuffle(pairs)
    batches = [pairs[i:i + a.batch] for i in range(0, len(pairs), a.batch)]
    if a.steps > 0:
        batches = batches[: a.steps]

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    total = 0.0
    for chunk in batches:
        idx = torch.tensor([i for i, _ in chunk])
        inputs, targets = batch_tensors(chunk)
        logits = model(images[idx], inputs)
        loss = loss_fn(logits.reshape(-1, vocab), targets.reshape(-1))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        total += loss.item()
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / seconds
    print(f"pytorch {torch.__version__} {a.arch} {a.image_size}px, {a.threads} threads: "
          f"{len(batches)} steps of {a.batch} pairs in {seconds:.1f} s "
          f"({1e3 * seconds / len(batches):.0f} ms/step, process CPU {100 * cpu:.0f} %), "
          f"mean loss {total / len(batches):.4f}")


if __name__ == "__main__":
    main()
