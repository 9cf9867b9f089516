#!/usr/bin/env python3
"""PyTorch side of `caplab bench train-step` (issue 15): one decoder training step on cached
features, cuDNN nn.LSTM on CUDA.

The network of scripts/parity/bench_train_step.py: a 2048-d feature projected to the 256-d first
step (Show and Tell), nn.Embedding(V, 256), nn.LSTM 256->512 (batch_first), nn.Linear 512->V,
cross-entropy ignoring <pad> (id 0), Adam (lr 1e-3), clip_grad_norm_(5.0); B = IMAGES x CAPTIONS
sequences, T = 20. Issue 15's figure: --images 128 --captions 1 --vocab 10000 on cuda.
--dtype bf16 casts the whole model and features to bfloat16 (as caplab's Cuda<bf16> does:
parameters, activations and Adam state in bf16, the loss in f32). CUDA is synchronised before
each time is taken. Prints ms per forward (loss, graph built) and per step, best / median.
Usage: bench_train_step.py [--device cuda|cpu] [--dtype f32|bf16] [--iters N] [--images N]
                           [--captions N] [--vocab V]
"""

import argparse
import statistics
import time

import torch

TIME, FEATURES, EMBED, HIDDEN, WARMUP = 20, 2048, 256, 512, 2


class Decoder(torch.nn.Module):
    def __init__(self, vocab: int, captions: int) -> None:
        super().__init__()
        self.captions = captions
        self.project = torch.nn.Linear(FEATURES, EMBED)
        self.embed = torch.nn.Embedding(vocab, EMBED)
        self.rnn = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, vocab)

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        image = self.project(features).repeat_interleave(self.captions, 0).unsqueeze(1)
        seq = torch.cat([image, self.embed(inputs)], 1)
        out, _ = self.rnn(seq)
        return self.head(out[:, 1:])


def timing(times: list) -> str:
    return f"{min(times):7.1f} / {statistics.median(times):7.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--images", type=int, default=128)
    p.add_argument("--captions", type=int, default=1)
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    model = Decoder(a.vocab, a.captions).to(dev, dtype)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = a.images * a.captions
    features = torch.randn(a.images, FEATURES, device=dev, dtype=dtype)
    inputs = torch.randint(4, a.vocab, (n, TIME), device=dev)
    targets = torch.randint(4, a.vocab, (n, TIME), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=0)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"pytorch ({name}, {a.dtype}) B={a.images}x{a.captions} T={TIME} LSTM {EMBED}->{HIDDEN} "
          f"V={a.vocab}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
          f"best / median of {a.iters}")

    def loss() -> torch.Tensor:
        logits = model(features, inputs).float()
        return loss_fn(logits.reshape(-1, a.vocab), targets.reshape(-1))

    times = []
    for i in range(WARMUP + a.iters):
        sync()
        start = time.perf_counter()
        loss().item()
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    print(f"pytorch  forward (loss, graph built):      {timing(times)}")

    times = []
    for i in range(WARMUP + a.iters):
        sync()
        start = time.perf_counter()
        optim.zero_grad()
        value = loss()
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        sync()
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    print(f"pytorch  step (forward, backward, clip, Adam): {timing(times)}")


if __name__ == "__main__":
    main()
