#!/usr/bin/env python3
"""Generate PyTorch parity fixtures for caplab's LSTM/GRU (crates/models/src/rnn).

For each cell kind writes, under crates/models/tests/fixtures/rnn/:
  {cell}.json         state_dict tensors, input, initial state and PyTorch's outputs
  {cell}.pt           the same state_dict via torch.save(m.state_dict(), path)
  {cell}.safetensors  the same state_dict via safetensors.torch.save_file
  decoder_{cell}.pt   the state_dict under the prefix `decoder.{cell}.` next to an
                      unrelated `decoder.embed.weight`, to test prefixed import

Usage: /var/tmp/torchvenv/bin/python scripts/parity/rnn.py [--out DIR]
"""

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

INPUT_SIZE = 6
HIDDEN_SIZE = 8
NUM_LAYERS = 2
BATCH = 3
TIME = 5
SEEDS = {"lstm": 1234, "gru": 4321}


def tensor_json(t: torch.Tensor) -> dict:
    """Shape and row-major values; float32 values are exact in float64 JSON numbers."""
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "values": t.double().flatten().tolist()}


def make_fixture(cell: str, out: Path) -> None:
    torch.manual_seed(SEEDS[cell])
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    model = cls(
        input_size=INPUT_SIZE,
        hidden_size=HIDDEN_SIZE,
        num_layers=NUM_LAYERS,
        batch_first=True,
        dropout=0.1,  # inactive in eval mode; present so the config round-trips
    ).eval()
    x = torch.randn(BATCH, TIME, INPUT_SIZE)
    h0 = torch.randn(NUM_LAYERS, BATCH, HIDDEN_SIZE)
    c0 = torch.randn(NUM_LAYERS, BATCH, HIDDEN_SIZE)

    with torch.no_grad():
        if cell == "lstm":
            output, (h_n, c_n) = model(x, (h0, c0))
            # Zero initial state, as `Rnn::forward(x, None)`.
            output_zero, _ = model(x)
        else:
            output, h_n = model(x, h0)
            c_n = None
            output_zero, _ = model(x)

    state_dict = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    fixture = {
        "generator": "scripts/parity/rnn.py",
        "torch_version": torch.__version__,
        "cell": cell,
        "input_size": INPUT_SIZE,
        "hidden_size": HIDDEN_SIZE,
        "num_layers": NUM_LAYERS,
        "state_dict": {k: tensor_json(v) for k, v in state_dict.items()},
        "input": tensor_json(x),
        "h0": tensor_json(h0),
        "output": tensor_json(output),
        "output_zero_state": tensor_json(output_zero),
        "h_n": tensor_json(h_n),
    }
    if cell == "lstm":
        fixture["c0"] = tensor_json(c0)
        fixture["c_n"] = tensor_json(c_n)

    (out / f"{cell}.json").write_text(json.dumps(fixture, indent=1) + "\n")
    torch.save(state_dict, out / f"{cell}.pt")
    save_file(state_dict, str(out / f"{cell}.safetensors"))

    prefixed = {f"decoder.{cell}.{k}": v for k, v in state_dict.items()}
    prefixed["decoder.embed.weight"] = torch.randn(4, INPUT_SIZE)
    torch.save(prefixed, out / f"decoder_{cell}.pt")
    print(f"{cell}: wrote {cell}.json/.pt/.safetensors and decoder_{cell}.pt to {out}")


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=repo / "crates/models/tests/fixtures/rnn")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for cell in ("lstm", "gru"):
        make_fixture(cell, args.out)


if __name__ == "__main__":
    main()
