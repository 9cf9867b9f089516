"""Writes crates/data/tests/fixtures/jpeg/: one photo-like 384x288 image (gradients, a disc, a bar,
mild noise) as a baseline and a progressive JPEG (quality 85, 4:2:0, so both hold the same DCT
coefficients), and a 256x192 one as an Adobe CMYK JPEG. They test preprocess.jpeg_draft's
reduced-scale decode (crates/data/tests/data.rs). Needs numpy and Pillow.

  python3 scripts/jpeg_fixtures.py
"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "data", "tests", "fixtures", "jpeg")


def photo(rng, w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 23.0) * np.cos(y / 31.0)], -1)
    img[((x - 0.6 * w) ** 2 + (y - 0.45 * h) ** 2) < (0.14 * w) ** 2] = [230, 40, 40]
    img[int(0.65 * h):int(0.78 * h), int(0.12 * w):int(0.43 * w)] = [20, 20, 200]
    img += rng.normal(0, 3, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def main():
    rng = np.random.default_rng(26)
    os.makedirs(OUT, exist_ok=True)
    im = photo(rng, 384, 288)
    im.save(os.path.join(OUT, "draft-baseline.jpg"), quality=85, subsampling=2)
    im.save(os.path.join(OUT, "draft-progressive.jpg"), quality=85, subsampling=2, progressive=True)
    photo(rng, 256, 192).convert("CMYK").save(os.path.join(OUT, "draft-cmyk.jpg"), quality=85)


if __name__ == "__main__":
    main()
