#!/usr/bin/env python3
"""Generate PyTorch parity fixtures for caplab's transformer caption decoder (crates/models/src/transformer).

The reference `CaptionTransformer` is `torch.nn.TransformerDecoder` (ReLU, batch_first) between
a word embedding with positions and a vocabulary head, with the module names of caplab's
`TransformerCaptionDecoder`, so its state_dict imports by name. Two seeded cases:

  post_sinusoidal   post-norm layers, sinusoidal positions, memory = the projected grid
  pre_learned       pre-norm layers (+ final norm), learned positions, a global token in front

Writes, under crates/models/tests/fixtures/transformer/, per case:
  CASE.safetensors  the state_dict (safetensors.torch.save_file)
  CASE.json         dims, inputs, the teacher-forced logits, the last layer's cross-attention
                    (mean over heads, grid locations only), the weights R of the scalar
                    loss sum(logits * R) and the gradient of every parameter (PyTorch keys)

Usage: /var/tmp/torch-venv/bin/python scripts/parity/transformer.py [--out DIR]
"""

import argparse
import json
import math
from pathlib import Path

import torch
from torch import nn
from safetensors.torch import save_file

ENCODER_DIM = 6  # D
NUM_PIXELS = 4  # L
D_MODEL = 8
NUM_HEADS = 2
D_FF = 12
NUM_LAYERS = 2
VOCAB_SIZE = 13  # V
MAX_POSITIONS = 7
BATCH = 2  # N
TIME = 5  # T
SEED = 2027

CASES = {
    "post_sinusoidal": {"norm_first": False, "learned": False, "global_token": False},
    "pre_learned": {"norm_first": True, "learned": True, "global_token": True},
}


def sinusoids(length: int, d: int) -> torch.Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)), in float64."""
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    index = torch.arange(d, dtype=torch.float64)
    rate = torch.pow(10000.0, -(index - index.remainder(2)) / d)
    angle = position * rate
    pe = torch.where(index.remainder(2) == 0, torch.sin(angle), torch.cos(angle))
    return pe.float()


class CaptionTransformer(nn.Module):
    """Embedding·√d + positions → nn.TransformerDecoder over relu(Linear(grid)) → Linear head."""

    def __init__(self, norm_first: bool, learned: bool, global_token: bool):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB_SIZE, D_MODEL)
        self.positions = nn.Embedding(MAX_POSITIONS, D_MODEL) if learned else None
        self.memory_proj = nn.Linear(ENCODER_DIM, D_MODEL)
        self.global_proj = nn.Linear(ENCODER_DIM, D_MODEL) if global_token else None
        layer = nn.TransformerDecoderLayer(
            D_MODEL,
            NUM_HEADS,
            D_FF,
            dropout=0.0,
            activation="relu",
            batch_first=True,
            norm_first=norm_first,
        )
        norm = nn.LayerNorm(D_MODEL) if norm_first else None
        self.decoder = nn.TransformerDecoder(layer, NUM_LAYERS, norm=norm)
        self.head = nn.Linear(D_MODEL, VOCAB_SIZE)

    def memory(self, grid):
        memory = torch.relu(self.memory_proj(grid))
        if self.global_proj is not None:
            token = torch.relu(self.global_proj(grid.mean(dim=1, keepdim=True)))
            memory = torch.cat([token, memory], dim=1)
        return memory

    def forward(self, grid, inputs):
        t = inputs.size(1)
        x = self.embedding(inputs) * math.sqrt(D_MODEL)
        if self.positions is not None:
            x = x + self.positions.weight[:t]
        else:
            x = x + sinusoids(t, D_MODEL)
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        y = self.decoder(x, self.memory(grid), tgt_mask=mask, tgt_is_causal=True)
        return self.head(y)


def capture_cross_attention(model: CaptionTransformer) -> list:
    """Records the last layer's cross-attention weights (mean over heads) on every forward."""
    seen = []
    busy = []

    def hook(module, args, kwargs, output):
        if busy:  # the call below runs this hook again
            return
        kwargs = dict(kwargs, need_weights=True, average_attn_weights=True)
        busy.append(True)
        with torch.no_grad():
            _, weights = module(*args, **kwargs)
        busy.pop()
        seen.append(weights)

    model.decoder.layers[-1].multihead_attn.register_forward_hook(hook, with_kwargs=True)
    return seen


def tensor_json(t: torch.Tensor) -> dict:
    """Shape and row-major values; float32 values are exact in float64 JSON numbers."""
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "values": t.double().flatten().tolist()}


def write_case(out: Path, name: str, options: dict, seed: int) -> None:
    torch.manual_seed(seed)
    model = CaptionTransformer(**options)
    # Spread every parameter (norms and biases included) so that none is negligible.
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.6, 0.6)
        for layer in model.decoder.layers:
            for norm in (layer.norm1, layer.norm2, layer.norm3):
                norm.weight.add_(1.0)
    model.train()  # dropout is 0: training mode only matters for the gradients

    grid = torch.randn(BATCH, NUM_PIXELS, ENCODER_DIM)
    inputs = torch.randint(0, VOCAB_SIZE, (BATCH, TIME))
    inputs[:, 0] = 1  # <sos>
    inputs[1, -2:] = 0  # <pad> at the end of the shorter caption
    weights_r = torch.randn(BATCH, TIME, VOCAB_SIZE)

    seen = capture_cross_attention(model)
    logits = model(grid, inputs)
    loss = (logits * weights_r).sum()
    loss.backward()
    alphas = seen[-1]
    if options["global_token"]:
        alphas = alphas[:, :, 1:]

    save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()},
        str(out / f"{name}.safetensors"),
    )
    fixture = {
        "encoder_dim": ENCODER_DIM,
        "num_pixels": NUM_PIXELS,
        "d_model": D_MODEL,
        "num_heads": NUM_HEADS,
        "d_ff": D_FF,
        "num_layers": NUM_LAYERS,
        "vocab_size": VOCAB_SIZE,
        "max_positions": MAX_POSITIONS,
        "norm": "pre" if options["norm_first"] else "post",
        "positions": "learned" if options["learned"] else "sinusoidal",
        "global_token": options["global_token"],
        "grid": tensor_json(grid),
        "inputs": {"shape": list(inputs.shape), "values": inputs.flatten().tolist()},
        "logits": tensor_json(logits),
        "alphas": tensor_json(alphas),
        "loss_weights": tensor_json(weights_r),
        "grads": {k: tensor_json(p.grad) for k, p in model.named_parameters()},
        "torch": torch.__version__,
    }
    (out / f"{name}.json").write_text(json.dumps(fixture) + "\n")
    print(f"wrote {out}/{name}.{{safetensors,json}}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parents[2] / "crates/models/tests/fixtures/transformer"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (name, options) in enumerate(CASES.items()):
        write_case(args.out, name, options, SEED + i)


if __name__ == "__main__":
    main()
