//! CPU benchmark of the caplab LSTM decoder step against burn's built-in `nn::Lstm`.
//!
//! Times `forward` of B=32, T=20, LSTM 256→512 followed by Linear 512→5000 on the NdArray
//! and Flex backends and prints milliseconds per forward (median of the timed runs).
//! Run: `cargo run -p caplab-models --example bench_rnn [-- ITERS]`.
//! PyTorch reference: `scripts/parity/bench_rnn.py`.

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

/// Median wall time in milliseconds of `iters` calls of `run` after a warm-up.
fn time_ms<B: Backend, F: FnMut() -> Tensor<B, 3>>(device: &B::Device, iters: usize, mut run: F) -> f64 {
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
    times[times.len() / 2]
}

/// Runs every benchmark on backend `B` and prints one line each.
fn bench_backend<B: Backend>(name: &str, iters: usize) {
    let device = B::Device::default();
    B::seed(&device, 0);
    let x = Tensor::<B, 3>::random([BATCH, TIME, D_INPUT], Distribution::Normal(0.0, 1.0), &device);
    let head: Linear<B> = LinearConfig::new(D_HIDDEN, VOCAB).init(&device);

    for cell in [CellKind::Lstm, CellKind::Gru] {
        let rnn = RnnConfig::new(cell, D_INPUT, D_HIDDEN).init::<B>(&device);
        let rnn_ms = time_ms(&device, iters, || rnn.forward(x.clone(), None).0);
        let full_ms = time_ms(&device, iters, || head.forward(rnn.forward(x.clone(), None).0));
        println!(
            "{name:<8} caplab {cell:?}: {full_ms:7.1} ms/forward with Linear→{VOCAB} ({rnn_ms:6.1} ms RNN only)"
        );
    }

    let burn_lstm = LstmConfig::new(D_INPUT, D_HIDDEN, true).init::<B>(&device);
    let burn_ms = time_ms(&device, iters, || head.forward(burn_lstm.forward(x.clone(), None).0));
    println!("{name:<8} burn::nn::Lstm: {burn_ms:7.1} ms/forward with Linear→{VOCAB} (reference)");
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
    println!("B={BATCH} T={TIME} {D_INPUT}→{D_HIDDEN}, median of {iters} runs");
    bench_backend::<NdArray<f32>>("ndarray", iters);
    bench_backend::<Flex>("flex", iters);
}
