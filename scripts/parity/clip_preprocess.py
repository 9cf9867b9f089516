#!/usr/bin/env python3
"""Fixtures for caplab's CLIP preprocessing against open_clip's (crates/data/tests/clip_preprocess.rs).

Writes small seeded PNG images (lossless, so both sides start from the same RGB pixels) to
crates/data/tests/fixtures/clip/ and, per image and size, what open_clip's eval transform
(`open_clip.image_transform(size, is_train=False)`: Resize(size, BICUBIC) on the shorter side,
CenterCrop(size), ToTensor, Normalize with CLIP's mean/std) gives: the u8 pixels after the crop and
the normalised float32 tensor.

Needs open_clip_torch, torch, torchvision, Pillow and numpy (/var/tmp/torch-venv/bin/python).
"""

import json
from pathlib import Path

import numpy as np
import open_clip
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/data/tests/fixtures/clip"

# (file, width, height, sizes): downscales by 1.7-3.3x with both crop roundings (offset 2.5 -> 2,
# 3.5 -> 4), portrait and landscape, an upscale, and an image already at the size.
IMAGES = [
    ("landscape.png", 53, 41, [16, 24]),
    ("half_offset.png", 50, 41, [24]),
    ("portrait.png", 37, 61, [16, 24]),
    ("small.png", 11, 15, [24]),
    ("square.png", 24, 24, [24]),
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(27)
    cases = []
    for name, w, h, sizes in IMAGES:
        # Smooth gradients plus noise: edges and flat areas both exercise the filter.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([255 * xx / max(w - 1, 1), 255 * yy / max(h - 1, 1),
                         128 + 100 * np.sin(xx / 3.0 + yy / 5.0)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(OUT / name)
        for size in sizes:
            transform = open_clip.image_transform(size, is_train=False)
            img = Image.open(OUT / name)
            tensor = transform(img)
            # The u8 pixels of the same pipeline before ToTensor.
            cropped = transforms.CenterCrop(size)(
                transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC)(img))
            cases.append({
                "file": name,
                "size": size,
                "pixels": np.asarray(cropped).reshape(-1).tolist(),
                # The shortest decimal that reads back as the same float32.
                "tensor": [float(str(v)) for v in tensor.numpy().reshape(-1)],
            })
    (OUT / "expected.json").write_text(json.dumps({"cases": cases}, separators=(",", ":")))
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
