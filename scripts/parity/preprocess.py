"""caplab's image preprocessing against torchvision's classic PIL pipeline on the same JPEG.

torchvision: PIL open -> convert RGB -> Resize((S, S), bilinear, antialias) -> ToTensor -> Normalize
(ImageNet mean/std). caplab: `caplab_data::image::load_image` (decode, bilinear 'Triangle' resize on
the u8 image, normalise).

  preprocess.py [IMAGE ...]              max and mean absolute pixel differences, normalised units
  preprocess.py --write-fixture          writes crates/data/tests/fixtures/preprocess/: a 256x192
                                         photo-like JPEG and torchvision's pixels for it at 64 and
                                         96 px (raw little-endian f32, CHW), checked in CI
  preprocess.py --features [IMAGE ...]   what those differences do to encoder features: the same
                                         seeded torchvision ResNet-50 / Inception v3 (random
                                         weights, BN statistics calibrated as in encoders.py) run
                                         on caplab's pixels and on torchvision's. For scale, the
                                         same figures for torchvision's own second pipeline
                                         (torchvision.io.decode_jpeg + tensor Resize) are printed.

Default images: a photo-sized JPEG with gradients and noise that the script writes, and the first
built-in synthetic image when data/shapes exists. Needs torch + torchvision + PIL.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import io as tvio
from torchvision import transforms

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def dump_pixels_exe():
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", "/var/tmp/caplab-target")
    subprocess.run(["cargo", "build", "-q", "-p", "caplab-data", "--example", "dump_pixels"],
                   cwd=REPO, env=env, check=True)
    return os.path.join(env["CARGO_TARGET_DIR"], "debug", "examples", "dump_pixels")


def caplab(exe, path, size, tmp):
    out = os.path.join(tmp, "px.bin")
    subprocess.run([exe, path, str(size), out], check=True)
    return np.fromfile(out, dtype="<f4").reshape(3, size, size)


def torchvision_pixels(path, size):
    t = transforms.Compose([
        transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR,
                          antialias=True),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    with Image.open(path) as im:
        return t(im.convert("RGB")).numpy()


def torchvision_tensor_pixels(path, size):
    """torchvision's tensor pipeline: libjpeg decode, uint8 tensor resize (antialias), normalise."""
    img = tvio.decode_image(tvio.read_file(path), mode=tvio.ImageReadMode.RGB)
    img = transforms.functional.resize(img, [size, size], antialias=True)
    return transforms.functional.normalize(img.float() / 255.0, MEAN, STD).numpy()


def photo_like(path, width, height):
    """A JPEG with smooth gradients, texture and hard edges."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x / width * 255, y / height * 255, (x + y) % 256], -1)
    arr = arr + rng.normal(0, 12, (height, width, 3))
    arr[height // 4: height // 2, width // 3: width // 2] = [250, 30, 40]
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)


def default_images(tmp):
    photo = os.path.join(tmp, "photo.jpg")
    photo_like(photo, 500, 375)  # photo-sized, like Flickr8k
    images = [photo]
    shapes = os.path.join(REPO, "data", "shapes", "images", "000000.jpg")
    if os.path.exists(shapes):
        images.append(shapes)
    return images


def pixel_table(exe, images, tmp):
    print(f"{'image':<40}{'size':>6}{'max |diff|':>12}{'mean |diff|':>13}")
    for path in images:
        for size in (64, 224, 299):
            d = np.abs(caplab(exe, path, size, tmp) - torchvision_pixels(path, size))
            print(f"{os.path.basename(path):<40}{size:>6}{d.max():>12.4f}{d.mean():>13.5f}")


def feature_table(exe, images, tmp):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import encoders  # the parity script's seeded models

    def compare(a, b):
        a, b = a.double().flatten(1), b.double().flatten(1)
        rel = float(((a - b).norm(dim=1) / b.norm(dim=1)).max())
        cos = float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())
        return float((a - b).abs().max()), rel, cos

    print("| arch | image | pipeline vs torchvision PIL | pooled max abs | pooled rel L2 "
          "| pooled cosine | spatial rel L2 |")
    print("|---|---|---|---|---|---|---|")
    for arch in ("resnet50", "inception_v3"):
        size = 299 if arch == "inception_v3" else 224
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(42)
        model = encoders.build(arch)
        encoders.perturb_batch_norm(model, gen)
        encoders.calibrate_batch_norm(model, size, gen)
        model.eval()
        for path in images:
            ref = torch.from_numpy(torchvision_pixels(path, size))[None]
            ours = torch.from_numpy(caplab(exe, path, size, tmp))[None]
            other = torch.from_numpy(torchvision_tensor_pixels(path, size))[None]
            ref_p, ref_s = encoders.features(model, arch, ref)
            for name, px in (("caplab", ours), ("torchvision tensor", other)):
                p, s = encoders.features(model, arch, px)
                max_abs, rel, cos = compare(p, ref_p)
                _, rel_s, _ = compare(s, ref_s)
                print(f"| {arch} | {os.path.basename(path)} | {name} | {max_abs:.2e} | {rel:.2e} "
                      f"| {cos:.6f} | {rel_s:.2e} |", flush=True)


def write_fixture():
    out = os.path.join(REPO, "crates", "data", "tests", "fixtures", "preprocess")
    os.makedirs(out, exist_ok=True)
    photo = os.path.join(out, "photo.jpg")
    photo_like(photo, 256, 192)
    for size in (64, 96):
        torchvision_pixels(photo, size).astype("<f4").tofile(os.path.join(out, f"photo.{size}.f32"))
    print(f"wrote {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", action="store_true",
                        help="measure the effect on encoder features instead of pixels")
    parser.add_argument("--write-fixture", action="store_true",
                        help="write the CI fixture (crates/data/tests/fixtures/preprocess)")
    parser.add_argument("images", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    if args.write_fixture:
        write_fixture()
        return
    tmp = tempfile.mkdtemp()
    exe = dump_pixels_exe()
    images = args.images or default_images(tmp)
    if args.features:
        feature_table(exe, images, tmp)
    else:
        pixel_table(exe, images, tmp)


if __name__ == "__main__":
    main()
