#!/usr/bin/env python3
"""Generate PyTorch parity fixtures for caplab's soft attention decoder (crates/models/src/attention).

The torch modules follow sgrvinod's a-PyTorch-Tutorial-to-Image-Captioning (`Attention`,
`DecoderWithAttention`) with the same parameter names. Writes, under
crates/models/tests/fixtures/attention/:
  decoder.safetensors  the decoder's state_dict via safetensors.torch.save_file
  decoder.json         dims, inputs and PyTorch's outputs for one step and a teacher-forced forward

Usage: /var/tmp/torchvenv/bin/python scripts/parity/attention.py [--out DIR]
"""

import argparse
import json
from pathlib import Path

import torch
from torch import nn
from safetensors.torch import save_file

ENCODER_DIM = 6  # D
NUM_PIXELS = 4  # L
EMBED_DIM = 5  # E
HIDDEN_DIM = 7  # H
ATTENTION_DIM = 3  # A
VOCAB_SIZE = 11  # V
BATCH = 2  # N
TIME = 3  # T
SEED = 2024


class Attention(nn.Module):
    """Additive (Bahdanau) attention over the encoder's spatial grid."""

    def __init__(self, encoder_dim, decoder_dim, attention_dim):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)
        att2 = self.decoder_att(decoder_hidden)
        att = self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)
        alpha = self.softmax(att)
        context = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)
        return context, alpha


class DecoderWithAttention(nn.Module):
    """Show, Attend and Tell decoder (no sorting by length: every caption runs T steps)."""

    def __init__(self):
        super().__init__()
        self.attention = Attention(ENCODER_DIM, HIDDEN_DIM, ATTENTION_DIM)
        self.embedding = nn.Embedding(VOCAB_SIZE, EMBED_DIM)
        self.dropout = nn.Dropout(p=0.5)
        self.decode_step = nn.LSTMCell(EMBED_DIM + ENCODER_DIM, HIDDEN_DIM, bias=True)
        self.init_h = nn.Linear(ENCODER_DIM, HIDDEN_DIM)
        self.init_c = nn.Linear(ENCODER_DIM, HIDDEN_DIM)
        self.f_beta = nn.Linear(HIDDEN_DIM, ENCODER_DIM)
        self.sigmoid = nn.Sigmoid()
        self.fc = nn.Linear(HIDDEN_DIM, VOCAB_SIZE)

    def init_hidden_state(self, encoder_out):
        mean = encoder_out.mean(dim=1)
        return self.init_h(mean), self.init_c(mean)

    def step(self, encoder_out, tokens, h, c):
        context, alpha = self.attention(encoder_out, h)
        gate = self.sigmoid(self.f_beta(h))
        context = gate * context
        emb = self.embedding(tokens)
        h, c = self.decode_step(torch.cat([emb, context], dim=1), (h, c))
        logits = self.fc(self.dropout(h))
        return logits, alpha, h, c

    def forward(self, encoder_out, inputs):
        h, c = self.init_hidden_state(encoder_out)
        logits, alphas = [], []
        for t in range(inputs.size(1)):
            step_logits, alpha, h, c = self.step(encoder_out, inputs[:, t], h, c)
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)


def tensor_json(t: torch.Tensor) -> dict:
    """Shape and row-major values; float32 values are exact in float64 JSON numbers."""
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "values": t.double().flatten().tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parents[2] / "crates/models/tests/fixtures/attention"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(SEED)
    model = DecoderWithAttention()
    # Spread every parameter so that no part of the computation is negligible.
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.8, 0.8)
    model.eval()

    encoder_out = torch.randn(BATCH, NUM_PIXELS, ENCODER_DIM)
    inputs = torch.randint(0, VOCAB_SIZE, (BATCH, TIME))
    inputs[:, 0] = 1  # <sos>

    with torch.no_grad():
        h0, c0 = model.init_hidden_state(encoder_out)
        logits, alpha, h1, c1 = model.step(encoder_out, inputs[:, 0], h0, c0)
        logp = torch.log_softmax(logits, dim=1)
        seq_logits, seq_alphas = model(encoder_out, inputs)

    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(args.out / "decoder.safetensors"),
    )
    fixture = {
        "encoder_dim": ENCODER_DIM,
        "num_pixels": NUM_PIXELS,
        "embed_dim": EMBED_DIM,
        "hidden_dim": HIDDEN_DIM,
        "attention_dim": ATTENTION_DIM,
        "vocab_size": VOCAB_SIZE,
        "encoder_out": tensor_json(encoder_out),
        "inputs": {"shape": list(inputs.shape), "values": inputs.flatten().tolist()},
        "step": {
            "h0": tensor_json(h0),
            "c0": tensor_json(c0),
            "logp": tensor_json(logp),
            "alpha": tensor_json(alpha),
            "h": tensor_json(h1),
            "c": tensor_json(c1),
        },
        "forward": {"logits": tensor_json(seq_logits), "alphas": tensor_json(seq_alphas)},
    }
    (args.out / "decoder.json").write_text(json.dumps(fixture) + "\n")
    print(f"wrote {args.out}/decoder.{{safetensors,json}}")


if __name__ == "__main__":
    main()
