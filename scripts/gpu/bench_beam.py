#!/usr/bin/env python3
"""PyTorch side of `caplab bench beam` (issue 15) and of `just bench decode` (issue 14):
batched beam search k = 5 or greedy search, captions/s.

An untrained Show-and-Tell decoder like caplab's bench: a 2048-d feature projected to the 256-d
first step, nn.Embedding(V, 256), nn.LSTMCell 256->512, nn.Linear 512->V, max_len 20, <sos> = 1,
<eos> = 2; N random features, BATCH images per search call, k beams per image kept as one
(BATCH*k) batch: log-softmax, top-k over k*V per image, finished beams (<eos>) kept with their
score. Greedy: the arg-max word per step for the whole batch, finished captions kept. Untrained,
it rarely emits <eos>: captions run to max_len, on both sides.
Usage: bench_beam.py [--device cuda|cpu] [--dtype f32|bf16] [--search beam|greedy] [--threads N]
                     [--images N] [--batch N] [--vocab V]
"""

import argparse
import time

import torch

FEATURES, EMBED, HIDDEN, MAX_LEN, K, SOS, EOS = 2048, 256, 512, 20, 5, 1, 2


class Decoder(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.project = torch.nn.Linear(FEATURES, EMBED)
        self.embed = torch.nn.Embedding(vocab, EMBED)
        self.cell = torch.nn.LSTMCell(EMBED, HIDDEN)
        self.head = torch.nn.Linear(HIDDEN, vocab)


@torch.no_grad()
def beam(model: Decoder, features: torch.Tensor, vocab: int) -> int:
    n = features.shape[0]
    h, c = model.cell(model.project(features))  # the image is the first step
    h = h.repeat_interleave(K, 0)
    c = c.repeat_interleave(K, 0)
    dev = features.device
    scores = torch.full((n, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0
    tokens = torch.full((n * K, 1), SOS, dtype=torch.long, device=dev)
    done = torch.zeros(n * K, dtype=torch.bool, device=dev)
    for _ in range(MAX_LEN):
        h, c = model.cell(model.embed(tokens[:, -1]), (h, c))
        logp = torch.log_softmax(model.head(h).float(), -1)
        # Finished beams only extend with <eos> at no cost.
        logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
        logp[:, EOS] = torch.where(done, torch.zeros_like(logp[:, EOS]), logp[:, EOS])
        total = (scores.reshape(-1, 1) + logp).reshape(n, K * vocab)
        scores, idx = total.topk(K, dim=1)
        origin = (idx // vocab) + torch.arange(n, device=dev)[:, None] * K
        word = (idx % vocab).reshape(-1, 1)
        origin = origin.reshape(-1)
        h, c, done = h[origin], c[origin], done[origin] | (word.reshape(-1) == EOS)
        tokens = torch.cat([tokens[origin], word], 1)
        if bool(done.all()):
            break
    best = scores.argmax(1) + torch.arange(n, device=dev) * K
    return int((tokens[best] != EOS).sum().item()) - n  # words, <sos> not counted


@torch.no_grad()
def greedy(model: Decoder, features: torch.Tensor, vocab: int) -> int:
    n = features.shape[0]
    h, c = model.cell(model.project(features))  # the image is the first step
    word = torch.full((n,), SOS, dtype=torch.long, device=features.device)
    done = torch.zeros(n, dtype=torch.bool, device=features.device)
    words = torch.zeros(n, dtype=torch.long, device=features.device)
    for _ in range(MAX_LEN):
        h, c = model.cell(model.embed(word), (h, c))
        word = model.head(h).argmax(-1)
        done = done | (word == EOS)
        words += (~done).long()
        if bool(done.all()):
            break
    return int(words.sum().item())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--search", default="beam", choices=["beam", "greedy"])
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    search = beam if a.search == "beam" else greedy
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    model = Decoder(a.vocab).to(dev, dtype).eval()
    features = torch.randn(a.images, FEATURES, device=dev, dtype=dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    search(model, features[: min(a.batch, a.images)], a.vocab)  # warm-up
    sync()
    start = time.perf_counter()
    words = 0
    for i in range(0, a.images, a.batch):
        words += search(model, features[i:i + a.batch], a.vocab)
    sync()
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    what = f"beam k={K}" if a.search == "beam" else "greedy"
    threads = f", {torch.get_num_threads()} threads" if dev.type == "cpu" else ""
    print(f"pytorch ({name}, {a.dtype}{threads}) {what} V={a.vocab} max_len={MAX_LEN}: {a.images} images, "
          f"batch {a.batch}: {seconds:.1f} s, {a.images / seconds:.1f} captions/s, "
          f"{words / a.images:.1f} words/caption")


if __name__ == "__main__":
    main()
