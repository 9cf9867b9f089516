#!/usr/bin/env python3
"""Parity of caplab's vision transformers with torchvision's ViT and open_clip's CLIP image tower.

  vit.py fixtures   writes the small CI fixtures to crates/models/tests/fixtures/vit/
  vit.py [parity]   whole-network parity: seeded random torchvision vit_b_16 and open_clip
                    ViT-B-32 image tower vs the Rust example `parity_encoders` (max abs and
                    relative differences of the global feature and the patch-token grid)

Needs torch, torchvision, open_clip_torch, numpy and safetensors (/var/tmp/torch-venv/bin/python).
No pretrained weights are read: every model is randomly initialised from fixed seeds.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torchvision
from open_clip.transformer import QuickGELU
from open_clip.transformer import VisionTransformer as ClipVisionTransformer
from safetensors.torch import save_file
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates/models/tests/fixtures/vit"


def perturb(model, gen):
    """Random LayerNorm affine parameters, biases and class token, so that none is trivially 1/0."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln.weight", "ln_pre.weight",
                              "ln_post.weight")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name == "class_token":
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))


def tv_features(model, x):
    """torchvision ViT: (class token, patch grid [B, D, h, w]) after `encoder.ln`."""
    with torch.no_grad():
        n = x.shape[0]
        tokens = model._process_input(x)
        tokens = torch.cat([model.class_token.expand(n, -1, -1), tokens], dim=1)
        out = model.encoder(tokens)
        g = x.shape[-1] // model.patch_size
        grid = out[:, 1:].transpose(1, 2).reshape(n, out.shape[-1], g, g)
        return out[:, 0], grid


def clip_features(tower, x):
    """open_clip tower with output_tokens: (ln_post(x)[:, 0] @ proj, patch grid [B, width, h, w])."""
    tower.output_tokens = True
    with torch.no_grad():
        pooled, tokens = tower(x)
    n, l, d = tokens.shape
    g = int(round(l ** 0.5))
    return pooled, tokens.transpose(1, 2).reshape(n, d, g, g)


def save_tensors(path, tensors):
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, str(path))
    os.chmod(path, 0o644)


def tiny_vit(image_size=32):
    return VisionTransformer(image_size=image_size, patch_size=8, num_layers=2, num_heads=2,
                             hidden_dim=16, mlp_dim=24, num_classes=5)


def tiny_clip(quick_gelu, image_size=32):
    return ClipVisionTransformer(image_size=image_size, patch_size=8, width=16, layers=2, heads=2,
                                 mlp_ratio=1.5, output_dim=8,
                                 act_layer=QuickGELU if quick_gelu else nn.GELU)


def write_fixtures():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2027)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for old in FIXTURES.glob("*"):
        old.unlink()

    # Key/shape listings of the full models (torchvision's with heads, open_clip's whole CLIP).
    listing = {}
    for arch in ("vit_b_16", "vit_b_32", "vit_l_16"):
        sd = getattr(torchvision.models, arch)(weights=None).state_dict()
        listing[arch] = [[k, list(v.shape)] for k, v in sd.items()]
    for arch, name in (("clip_vit_b_32", "ViT-B-32"), ("clip_vit_b_16", "ViT-B-16")):
        sd = open_clip.create_model(name).state_dict()
        listing[arch] = [[k, list(v.shape)] for k, v in sd.items()]
    (FIXTURES / "state_dict_keys.json").write_text(json.dumps(listing, separators=(",", ":")))

    # torchvision ViT, reduced width: weights (.safetensors and .pth) and outputs at 32 px, and
    # at 48 px after torchvision's interpolate_embeddings (bicubic positional embedding).
    model = tiny_vit()
    perturb(model, gen)
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    pooled, spatial = tv_features(model, x)
    sd = model.state_dict()
    save_tensors(FIXTURES / "vit_tiny.weights.safetensors", sd)
    torch.save(sd, FIXTURES / "vit_tiny.weights.pth")
    x48 = torch.randn(2, 3, 48, 48, generator=gen)
    big = tiny_vit(48)
    big.load_state_dict(interpolate_embeddings(48, 8, sd))
    big.eval()
    pooled48, spatial48 = tv_features(big, x48)
    save_tensors(FIXTURES / "vit_tiny.io.safetensors",
                 {"input": x, "pooled": pooled, "spatial": spatial,
                  "input48": x48, "pooled48": pooled48, "spatial48": spatial48})

    # open_clip image tower, reduced width, QuickGELU (OpenAI) and GELU: saved as a whole CLIP
    # state_dict (`visual.` prefix beside a text-tower key) and as the tower's own.
    for quick_gelu, name in ((True, "clip_tiny"), (False, "clip_tiny_gelu")):
        tower = tiny_clip(quick_gelu)
        perturb(tower, gen)
        tower.eval()
        x = torch.randn(2, 3, 32, 32, generator=gen)
        pooled, spatial = clip_features(tower, x)
        sd = tower.state_dict()
        whole = {f"visual.{k}": v for k, v in sd.items()}
        whole["logit_scale"] = torch.tensor(4.6)
        whole["transformer.resblocks.0.ln_1.weight"] = torch.ones(4)
        save_tensors(FIXTURES / f"{name}.weights.safetensors", whole)
        if quick_gelu:
            torch.save(sd, FIXTURES / f"{name}.visual.pth")
        save_tensors(FIXTURES / f"{name}.io.safetensors",
                     {"input": x, "pooled": pooled, "spatial": spatial})

    total = sum(p.stat().st_size for p in FIXTURES.glob("*"))
    print(f"wrote {len(list(FIXTURES.glob('*')))} fixtures to {FIXTURES} ({total / 1e3:.0f} kB)")


TORCHVISION = ["vit_b_16", "vit_b_32", "vit_l_16"]
OPEN_CLIP = {
    "clip_vit_b_32": "ViT-B-32",
    "clip_vit_b_32_quickgelu": "ViT-B-32-quickgelu",
    "clip_vit_b_16": "ViT-B-16",
    "clip_vit_b_16_quickgelu": "ViT-B-16-quickgelu",
}


def build(arch, gen):
    """(model, features function, extra args for the Rust example) for a whole network."""
    if arch in TORCHVISION:
        model = getattr(torchvision.models, arch)(weights=None)
        perturb(model, gen)
        return model.eval(), tv_features, []
    # caplab's clip_vit_b_32 is open_clip's ViT-B-32 (GELU), clip_vit_b_32_quickgelu its
    # ViT-B-32-quickgelu (OpenAI's weights).
    name = OPEN_CLIP[arch]
    tower = open_clip.create_model(name).visual
    perturb(tower, gen)
    return tower.eval(), clip_features, []


def run_parity(archs, batch, build_profile):
    """caplab vs the reference in float64 (the same function) and float32 (rounding).

    Each network runs five ways, as in encoders.py: torch f32/f64, caplab NdArray f32/f64 and
    Flex f32. Relative error is max |a - b| / max |reference|; the goal is <= 1e-4 in float32.
    """
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", "/var/tmp/caplab-target")
    cargo = ["cargo", "build", "-p", "caplab-models", "--example", "parity_encoders"]
    if build_profile == "release":
        cargo.append("--release")
    subprocess.run(cargo, cwd=ROOT, env=env, check=True)
    exe = Path(env["CARGO_TARGET_DIR"]) / build_profile / "examples/parity_encoders"
    failed, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for arch in archs:
            torch.manual_seed(0)
            gen = torch.Generator().manual_seed(42)
            model, features, extra = build(arch, gen)
            x = torch.randn(batch, 3, 224, 224, generator=gen)
            weights = tmp / f"{arch}.safetensors"
            save_tensors(weights, model.state_dict())
            save_tensors(tmp / f"{arch}.input.safetensors", {"input": x})
            t32 = features(model, x)
            t64 = features(model.double(), x.double())
            model.float()
            ours, seconds = {}, {}
            for precision, dtype in (("f32", "<f4"), ("f64", "<f8"), ("flex", "<f4")):
                start = time.time()
                subprocess.run([str(exe), arch, str(weights), str(tmp / f"{arch}.input.safetensors"),
                                str(tmp), precision, *extra], check=True)
                seconds[precision] = time.time() - start
                ours[precision] = [
                    np.fromfile(tmp / f"{arch}.{name}.{precision}", dtype=dtype).reshape(ref.shape)
                    for name, ref in zip(("pooled", "spatial"), t32)
                ]

            def diff(a, b):
                return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())

            row = {"arch": arch}
            for i, name in enumerate(("pooled", "spatial")):
                scale = float(t64[i].abs().max())
                r = {
                    "caplab64_vs_torch64": diff(ours["f64"][i], t64[i].numpy()),
                    "caplab32_vs_torch32": diff(ours["f32"][i], t32[i].numpy()),
                    "flex_vs_torch32": diff(ours["flex"][i], t32[i].numpy()),
                    "caplab32_vs_exact": diff(ours["f32"][i], t64[i].numpy()),
                    "flex_vs_exact": diff(ours["flex"][i], t64[i].numpy()),
                    "torch32_vs_exact": diff(t32[i].numpy(), t64[i].numpy()),
                    "max_abs": scale,
                    "shape": list(t32[i].shape),
                }
                for k in list(r):
                    if k.endswith(("torch32", "torch64", "exact")):
                        r[f"rel_{k}"] = r[k] / scale
                row[name] = r
            ok = all(row[n]["rel_caplab64_vs_torch64"] <= 1e-9 for n in ("pooled", "spatial"))
            goal = all(row[n][f"rel_{b}_vs_torch32"] <= 1e-4
                       for n in ("pooled", "spatial") for b in ("caplab32", "flex"))
            row["ok"], row["goal"] = ok, goal
            rows.append(row)
            if not ok:
                failed.append(arch)
            for name in ("pooled", "spatial"):
                r = row[name]
                print(f"{arch:14s} {name:8s} {str(tuple(r['shape'])):18s} max|y| {r['max_abs']:.2f}  "
                      f"rel: f64 vs torch f64 {r['rel_caplab64_vs_torch64']:.1e}, "
                      f"NdArray f32 vs torch f32 {r['rel_caplab32_vs_torch32']:.1e}, "
                      f"Flex vs torch f32 {r['rel_flex_vs_torch32']:.1e}; vs f64 ref: "
                      f"NdArray {r['rel_caplab32_vs_exact']:.1e} / Flex {r['rel_flex_vs_exact']:.1e}"
                      f" / torch {r['rel_torch32_vs_exact']:.1e}", flush=True)
            print(f"{arch:14s} rust f32 {seconds['f32']:.1f}s, f64 {seconds['f64']:.1f}s, "
                  f"flex {seconds['flex']:.1f}s   float64 {'identical' if ok else 'DIFFERENT'}, "
                  f"float32 goal 1e-4 relative {'met' if goal else 'missed'}", flush=True)
    print("| arch | output | max abs | f64: caplab vs torch | f32: NdArray vs torch "
          "| f32: Flex vs torch | error vs f64 ref: NdArray / Flex / torch |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for name in ("pooled", "spatial"):
            r = row[name]
            print(f"| {row['arch']} | {name} {'x'.join(map(str, r['shape'][1:]))} | {r['max_abs']:.2f} "
                  f"| {r['rel_caplab64_vs_torch64']:.1e} | {r['rel_caplab32_vs_torch32']:.1e} "
                  f"| {r['rel_flex_vs_torch32']:.1e} | {r['rel_caplab32_vs_exact']:.1e} / "
                  f"{r['rel_flex_vs_exact']:.1e} / {r['rel_torch32_vs_exact']:.1e} |")
    print("(relative: max abs difference / max |output| of torch's float64 result)")
    print("float64: all identical to torch (<= 1e-9 relative)" if not failed
          else f"FAILED (float64 differs): {failed}")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("fixtures", help="write the CI fixtures")
    parity = sub.add_parser("parity", help="whole-network parity against the Rust encoders")
    parity.add_argument("--arch", nargs="+", default=["vit_b_16", "clip_vit_b_32"],
                        choices=TORCHVISION + list(OPEN_CLIP))
    parity.add_argument("--batch", type=int, default=2)
    parity.add_argument("--profile", choices=["debug", "release"], default="debug")
    args = parser.parse_args()
    if args.command is None:
        args = parser.parse_args(["parity"])
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    if args.command == "fixtures":
        write_fixtures()
        return 0
    return run_parity(args.arch, args.batch, args.profile)


if __name__ == "__main__":
    sys.exit(main())
