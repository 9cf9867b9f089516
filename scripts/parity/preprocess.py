"""caplab's image preprocessing against torchvision's classic PIL pipeline on the same JPEG.

torchvision: PIL open -> convert RGB -> Resize((S, S), bilinear, antialias) -> ToTensor -> Normalize
(ImageNet mean/std). caplab: `caplab_data::image::load_image` (decode, bilinear 'Triangle' resize on
the u8 image, normalise). Prints max and mean absolute differences in normalised units.

Usage: python scripts/parity/preprocess.py [IMAGE ...]   (default: a few synthetic images and a
photo-sized JPEG it writes), needs torch + torchvision + PIL.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def caplab(path, size, tmp):
    out = os.path.join(tmp, "px.bin")
    subprocess.run(
        ["cargo", "run", "-q", "-p", "caplab-data", "--example", "dump_pixels", "--", path, str(size), out],
        cwd=REPO, check=True)
    return np.fromfile(out, dtype="<f4").reshape(3, size, size)


def torchvision_pixels(path, size):
    t = transforms.Compose([
        transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    with Image.open(path) as im:
        return t(im.convert("RGB")).numpy()


def main():
    tmp = tempfile.mkdtemp()
    images = sys.argv[1:]
    if not images:
        rng = np.random.default_rng(0)
        photo = os.path.join(tmp, "photo.jpg")
        # A photo-sized image with smooth gradients and texture (500x375, like Flickr8k).
        y, x = np.mgrid[0:375, 0:500]
        arr = np.stack([x / 500 * 255, y / 375 * 255, (x + y) % 256], -1) + rng.normal(0, 12, (375, 500, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(photo, quality=90)
        images = [photo]
        shapes = os.path.join(REPO, "data", "shapes", "images", "000000.jpg")
        if os.path.exists(shapes):
            images.append(shapes)
    print(f"{'image':<40}{'size':>6}{'max |diff|':>12}{'mean |diff|':>13}")
    for path in images:
        for size in (64, 224, 299):
            a = caplab(path, size, tmp)
            b = torchvision_pixels(path, size)
            d = np.abs(a - b)
            print(f"{os.path.basename(path):<40}{size:>6}{d.max():>12.4f}{d.mean():>13.5f}")


if __name__ == "__main__":
    main()
