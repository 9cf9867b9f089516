#!/usr/bin/env python3
"""PyTorch CPU reference for crates/models/examples/bench_rnn.rs.

Times forward of B=32, T=20, nn.LSTM/nn.GRU 256->512 (batch_first) followed by
nn.Linear 512->5000 with 2 threads; prints ms per forward as best / median of the
timed runs (best-of-N is the robust figure on a shared machine).
Usage: /var/tmp/torchvenv/bin/python scripts/parity/bench_rnn.py [ITERS]
"""

import statistics
import sys
import time

import torch

BATCH, TIME, D_INPUT, D_HIDDEN, VOCAB, WARMUP = 32, 20, 256, 512, 5000, 2


def time_ms(fn, iters: int) -> str:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return f"{min(times):6.1f} / {statistics.median(times):6.1f} ms"


def main() -> None:
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = torch.randn(BATCH, TIME, D_INPUT)
    head = torch.nn.Linear(D_HIDDEN, VOCAB).eval()
    print(f"B={BATCH} T={TIME} {D_INPUT}->{D_HIDDEN}, ms per forward: best / median of "
          f"{iters}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.no_grad():
        h = torch.zeros(BATCH, TIME, D_HIDDEN)
        print(f"pytorch  Linear {D_HIDDEN}->{VOCAB} only:          {time_ms(lambda: head(h), iters)}")
    for name, cls in (("LSTM", torch.nn.LSTM), ("GRU", torch.nn.GRU)):
        rnn = cls(D_INPUT, D_HIDDEN, batch_first=True).eval()
        with torch.no_grad():
            rnn_only = time_ms(lambda: rnn(x), iters)
            full = time_ms(lambda: head(rnn(x)[0]), iters)
        print(f"pytorch  {name} only:                    {rnn_only}")
        print(f"pytorch  {name} + Linear:                {full}")


if __name__ == "__main__":
    main()
