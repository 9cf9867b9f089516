#!/usr/bin/env python3
"""PyTorch side of `caplab bench train-step --decoder transformer` and `caplab bench decode
--decoder transformer` (issue 27, `just bench transformer`).

The network of caplab's TransformerCaptionDecoder with the `[model.transformer]` defaults:
nn.Embedding(V, 512) scaled by sqrt(512) plus sinusoidal positions, dropout 0.1; the memory
relu(nn.Linear(2048, 512)) of a 7 x 7 grid of 2048-d features, dropout 0.1; nn.TransformerDecoder
of 6 nn.TransformerDecoderLayer(512, 8 heads, FFN 2048, dropout 0.1, post-norm, batch_first) with
a causal mask; nn.Linear(512, V).

step:   one training step, B = IMAGES x CAPTIONS sequences, T = 20: cross-entropy ignoring <pad>
        (id 0), Adam (lr 1e-3), clip_grad_norm_(5.0); ms per forward (loss, graph built) and per
        step, best / median.
decode: greedy or beam k = 5 (max_len 20, <sos> = 1, <eos> = 2; beams kept as one batch, finished
        beams extend with <eos> at no cost), the whole prefix through the decoder at every step:
        nn.TransformerDecoder has no key/value cache. Untrained, it rarely emits <eos>.
Usage: bench_transformer.py step [--threads N] [--iters N] [--images N] [--captions N] [--vocab V]
       bench_transformer.py decode [--threads N] [--search greedy|beam] [--images N] [--batch N]
                                   [--vocab V]
"""

import argparse
import math
import statistics
import time

import torch

TIME, FEATURES, GRID, D, HEADS, FFN, LAYERS, DROPOUT = 20, 2048, 7, 512, 8, 2048, 6, 0.1
MAX_LEN, K, SOS, EOS, WARMUP = 20, 5, 1, 2, 2


def sinusoids(length: int, d: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


class CaptionTransformer(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, D)
        self.memory_proj = torch.nn.Linear(FEATURES, D)
        layer = torch.nn.TransformerDecoderLayer(D, HEADS, FFN, DROPOUT, batch_first=True)
        self.decoder = torch.nn.TransformerDecoder(layer, LAYERS)
        self.head = torch.nn.Linear(D, vocab)
        self.dropout = torch.nn.Dropout(DROPOUT)
        self.register_buffer("positions", sinusoids(64, D), persistent=False)

    def memory(self, grid: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.relu(self.memory_proj(grid)))

    def forward(self, grid: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        t = inputs.shape[1]
        x = self.embedding(inputs) * math.sqrt(D) + self.positions[:t]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(t, device=inputs.device)
        y = self.decoder(self.dropout(x), self.memory(grid), tgt_mask=mask, tgt_is_causal=True)
        return self.head(y)


def timing(times: list) -> str:
    return f"{min(times):7.1f} / {statistics.median(times):7.1f} ms"


def step(a: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = CaptionTransformer(a.vocab).train()
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = a.images * a.captions
    grid = torch.randn(a.images, GRID * GRID, FEATURES).repeat_interleave(a.captions, 0)
    inputs = torch.randint(4, a.vocab, (n, TIME))
    targets = torch.randint(4, a.vocab, (n, TIME))
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=0)
    print(f"pytorch (cpu) B={a.images}x{a.captions} T={TIME} Transformer {LAYERS} layers d_model {D} "
          f"heads {HEADS} FFN {FFN} dropout {DROPOUT} over {GRID}x{GRID}x{FEATURES} V={a.vocab}, "
          f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}, best / median of {a.iters}")

    def loss() -> torch.Tensor:
        logits = model(grid, inputs)
        return loss_fn(logits.reshape(-1, a.vocab), targets.reshape(-1))

    times = []
    for i in range(WARMUP + a.iters):
        start = time.perf_counter()
        loss().item()
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    print(f"pytorch  forward (loss, graph built):      {timing(times)}")
    times = []
    for i in range(WARMUP + a.iters):
        start = time.perf_counter()
        optim.zero_grad()
        value = loss()
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    print(f"pytorch  step (forward, backward, clip, Adam): {timing(times)}")


def last_logp(model: CaptionTransformer, grid: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(model(grid, tokens)[:, -1], -1)


@torch.no_grad()
def greedy(model: CaptionTransformer, grid: torch.Tensor, vocab: int) -> int:
    n = grid.shape[0]
    tokens = torch.full((n, 1), SOS, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    words = torch.zeros(n, dtype=torch.long)
    for _ in range(MAX_LEN):
        word = last_logp(model, grid, tokens).argmax(-1)
        done = done | (word == EOS)
        words += (~done).long()
        tokens = torch.cat([tokens, word[:, None]], 1)
        if bool(done.all()):
            break
    return int(words.sum().item())


@torch.no_grad()
def beam(model: CaptionTransformer, grid: torch.Tensor, vocab: int) -> int:
    n = grid.shape[0]
    grid = grid.repeat_interleave(K, 0)
    scores = torch.full((n, K), float("-inf"))
    scores[:, 0] = 0.0
    tokens = torch.full((n * K, 1), SOS, dtype=torch.long)
    done = torch.zeros(n * K, dtype=torch.bool)
    for _ in range(MAX_LEN):
        logp = last_logp(model, grid, tokens)
        logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
        logp[:, EOS] = torch.where(done, torch.zeros_like(logp[:, EOS]), logp[:, EOS])
        total = (scores.reshape(-1, 1) + logp).reshape(n, K * vocab)
        scores, idx = total.topk(K, dim=1)
        origin = ((idx // vocab) + torch.arange(n)[:, None] * K).reshape(-1)
        word = (idx % vocab).reshape(-1, 1)
        done = done[origin] | (word.reshape(-1) == EOS)
        tokens = torch.cat([tokens[origin], word], 1)
        if bool(done.all()):
            break
    best = scores.argmax(1) + torch.arange(n) * K
    return int((tokens[best] != EOS).sum().item()) - n  # words, <sos> not counted


def decode(a: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = CaptionTransformer(a.vocab).eval()
    grids = torch.randn(a.images, GRID * GRID, FEATURES)
    search = beam if a.search == "beam" else greedy
    search(model, grids[: min(a.batch, a.images, 8)], a.vocab)  # warm-up
    start = time.perf_counter()
    words = 0
    for i in range(0, a.images, a.batch):
        words += search(model, grids[i:i + a.batch], a.vocab)
    seconds = time.perf_counter() - start
    what = f"beam k={K}" if a.search == "beam" else "greedy"
    print(f"pytorch (cpu, {torch.get_num_threads()} threads, torch {torch.__version__}) Transformer "
          f"{LAYERS} layers, {what} V={a.vocab} max_len={MAX_LEN}, no cache (prefix re-run): "
          f"{a.images} images, batch {a.batch}: {seconds:7.2f} s, {a.images / seconds:7.2f} "
          f"captions/s, {words / a.images:.1f} words/caption")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["step", "decode"])
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--captions", type=int, default=1)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--search", default="greedy", choices=["beam", "greedy"])
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    step(a) if a.what == "step" else decode(a)


if __name__ == "__main__":
    main()
