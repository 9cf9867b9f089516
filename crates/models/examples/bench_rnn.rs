//! CPU benchmark of caplab's packed-gate LSTM/GRU against burn's built-in `nn::Lstm`.
//!
//! Times `forward` of B=32, T=20, RNN 256→512 followed by Linear 512→5000 on the NdArray
//! and Flex backends and prints milliseconds per forward as `best / median` of the timed
//! runs (best-of-N is the robust figure on a shared machine).
//! Run: `cargo run -p caplab-models --example bench_rnn [-- ITERS]`.
//! PyTorch reference: `scripts/parity/bench_rnn.py`.

use std::fmt;
use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::nn::{Linear, LinearConfig, LstmConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use caplab_models::rnn::{CellKind, RnnConfig};

const BATCH: usize = 32;
const TIME: usize = 20;
const D_INPUT: usize = 256;
const D_HIDDEN: usize = 512;
const VOCAB: usize = 5000;
const WARMUP: usize = 2;

/// Best and median wall time of the timed runs, in milliseconds.
struct Timing {
    best: f64,
    median: f64,
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:6.1} / {:6.1} ms", self.best, self.median)
    }
}

/// Times `iters` calls of `run` after a warm-up.
fn time<B: Backend, F: FnMut() -> Tensor<B, 3>>(
    device: &B::Device,
    iters: usize,
    mut run: F,
) -> Timing {
    let mut measure = || {
        let start = Instant::now();
        let out = run();
        // Both backends are eager; sync and a one-element read make sure the work is done.
        B::sync(device).expect("backend sync");
        let _ = out.slice([0..1, 0..1, 0..1]).into_data();
        start.elapsed().as_secs_f64() * 1e3
    };
    for _ in 0..WARMUP {
        measure();
    }
    let mut times: Vec<f64> = (0..iters).map(|_| measure()).collect();
    times.sort_by(f64::total_cmp);
    Timing {
        best: times[0],
        median: times[times.len() / 2],
    }
}

/// Runs every benchmark on backend `B` and prints one line each.
fn bench_backend<B: Backend>(name: &str, iters: usize) {
    let device = B::Device::default();
    B::seed(&device, 0);
    let x = Tensor::<B, 3>::random(
        [BATCH, TIME, D_INPUT],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let head: Linear<B> = LinearConfig::new(D_HIDDEN, VOCAB).init(&device);
    // Linear on the flattened [B*T, H] output: one GEMM, as PyTorch does for 3-D input.
    // burn's Linear on [B, T, H] runs a batched matmul that is about 2x slower.
    let head_2d = |h: Tensor<B, 3>| {
        head.forward(h.reshape([BATCH * TIME, D_HIDDEN]))
            .unsqueeze()
    };

    let head_only = time(&device, iters, || {
        head_2d(Tensor::zeros([BATCH, TIME, D_HIDDEN], &device))
    });
    println!("{name:<8} Linear {D_HIDDEN}→{VOCAB} only on [B*T, H]:   {head_only}");
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let rnn = RnnConfig::new(cell, D_INPUT, D_HIDDEN).init::<B>(&device);
        let rnn_only = time(&device, iters, || rnn.forward(x.clone(), None).0);
        let full = time(&device, iters, || head_2d(rnn.forward(x.clone(), None).0));
        let full_3d = time(&device, iters, || {
            head.forward(rnn.forward(x.clone(), None).0)
        });
        println!("{name:<8} caplab {cell:?} only:                      {rnn_only}");
        println!("{name:<8} caplab {cell:?} + Linear on [B*T, H]:      {full}");
        println!("{name:<8} caplab {cell:?} + Linear on [B, T, H]:     {full_3d}");
    }

    let burn_lstm = LstmConfig::new(D_INPUT, D_HIDDEN, true).init::<B>(&device);
    let burn_only = time(&device, iters, || burn_lstm.forward(x.clone(), None).0);
    let burn_full = time(&device, iters, || {
        head_2d(burn_lstm.forward(x.clone(), None).0)
    });
    println!("{name:<8} burn::nn::Lstm only (reference):        {burn_only}");
    println!("{name:<8} burn::nn::Lstm + Linear on [B*T, H]:    {burn_full}");
}

fn main() {
    let iters = match std::env::args().nth(1) {
        None => 10,
        Some(arg) => match arg.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("usage: bench_rnn [ITERS>0], got `{arg}`");
                std::process::exit(2);
            }
        },
    };
    println!("B={BATCH} T={TIME} {D_INPUT}→{D_HIDDEN}, ms per forward: best / median of {iters}");
    bench_backend::<NdArray<f32>>("ndarray", iters);
    bench_backend::<Flex>("flex", iters);
}
