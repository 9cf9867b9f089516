#!/usr/bin/env python3
"""PyTorch side of `caplab features` timing (issue 15): ResNet-50 / Inception v3 feature
extraction, images/s at batch 128, f32 and bf16, torchvision, random weights, eval, no_grad.

Two figures per (arch, dtype): `forward` (random input already on the GPU: the network alone,
best / median over batches) and `folder` (end to end like `caplab features`: PIL decode, resize,
ImageNet normalisation, batch to the GPU, forward to the pooled features, copy back; one pass
over IMAGES_DIR after one warm-up batch). caplab's figure is end to end only.
Also writes IMAGES random JPEGs into IMAGES_DIR with --make N (the inputs of both sides).
Usage: bench_features.py IMAGES_DIR [--make N] [--device cuda|cpu] [--batch 128] [--iters 5]
       [--archs resnet50,inception_v3] [--dtypes f32,bf16]
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torchvision
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SIZES = {"resnet50": 224, "inception_v3": 299}


def make_images(folder: str, n: int) -> None:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i:06d}.jpg"), quality=90)


def model_of(arch: str) -> torch.nn.Module:
    if arch == "resnet50":
        m = torchvision.models.resnet50(weights=None)
    else:
        m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    m.fc = torch.nn.Identity()
    return m.eval()


def load(paths, size):
    batch = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR))
             for p in paths]
    x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("images_dir")
    p.add_argument("--make", type=int, default=0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--archs", default="resnet50,inception_v3")
    p.add_argument("--dtypes", default="f32,bf16")
    a = p.parse_args()
    if a.make:
        make_images(a.images_dir, a.make)
        print(f"wrote {a.make} JPEGs to {a.images_dir}")
        return
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.backends.cudnn.benchmark = True
    paths = sorted(os.path.join(a.images_dir, f) for f in os.listdir(a.images_dir)
                   if f.lower().endswith((".jpg", ".jpeg", ".png")))
    for arch in a.archs.split(","):
        size = SIZES[arch]
        for dname in a.dtypes.split(","):
            dtype = torch.bfloat16 if dname == "bf16" else torch.float32
            torch.manual_seed(0)
            model = model_of(arch).to(dev, dtype)
            x = torch.randn(a.batch, 3, size, size, device=dev, dtype=dtype)
            rates = []
            for i in range(1 + a.iters):
                sync()
                t = time.perf_counter()
                model(x)
                sync()
                if i:
                    rates.append(a.batch / (time.perf_counter() - t))
            model(load(paths[: a.batch], size).to(dev, dtype))  # warm-up at the real shapes
            sync()
            t = time.perf_counter()
            for i in range(0, len(paths), a.batch):
                out = model(load(paths[i:i + a.batch], size).to(dev, dtype))
                out.float().cpu()
            sync()
            folder = len(paths) / (time.perf_counter() - t)
            print(f"pytorch {arch:12} {dname:4} batch {a.batch}: forward {max(rates):8.1f} / "
                  f"{statistics.median(rates):8.1f} img/s, folder ({len(paths)} JPEGs) "
                  f"{folder:8.1f} img/s")


if __name__ == "__main__":
    main()
