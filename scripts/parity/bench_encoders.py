#!/usr/bin/env python3
"""PyTorch CPU reference for `caplab bench encoders` (`just bench encoders`).

Images/second through torchvision ResNet-50 (224 px) and Inception v3 (299 px, no aux head)
forward to the pooled features (ViT-B/16 at 224 px: the class token after the last layer norm,
with ARCHS=vit_b_16), batch 16, random weights, eval mode, no_grad, THREADS threads (default 2);
prints best / median over the timed batches.
Usage: /var/tmp/torchvenv/bin/python scripts/parity/bench_encoders.py [ITERS [THREADS [ARCHS]]]
  ARCHS: comma-separated, default resnet50,inception_v3
"""

import statistics
import sys
import time

import torch
import torchvision

BATCH, WARMUP = 16, 1


def pooled(model: torch.nn.Module) -> torch.nn.Module:
    """The model up to the pooled features (classifier replaced by identity)."""
    if hasattr(model, "heads"):
        model.heads = torch.nn.Identity()
    else:
        model.fc = torch.nn.Identity()
    return model.eval()


def build(arch: str) -> tuple:
    """The pooled-feature model of `arch` and its input size."""
    if arch == "inception_v3":
        return pooled(torchvision.models.inception_v3(weights=None, aux_logits=False,
                                                      init_weights=False)), 299
    return pooled(getattr(torchvision.models, arch)(weights=None)), 224


def bench(model: torch.nn.Module, size: int, iters: int) -> str:
    x = torch.randn(BATCH, 3, size, size)
    rates = []
    with torch.no_grad():
        for i in range(WARMUP + iters):
            start = time.perf_counter()
            model(x)
            if i >= WARMUP:
                rates.append(BATCH / (time.perf_counter() - start))
    return f"{max(rates):7.2f} / {statistics.median(rates):7.2f} img/s"


def main() -> None:
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"batch {BATCH}, images/s: best / median of {iters}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    archs = sys.argv[3].split(",") if len(sys.argv) > 3 else ["resnet50", "inception_v3"]
    for arch in archs:
        model, size = build(arch)
        print(f"pytorch  {arch:<13} {size}px: {bench(model, size, iters)}")


if __name__ == "__main__":
    main()
