//! CPU throughput of the image encoders: images/second through ResNet-50 (224 px) and
//! Inception v3 (299 px) `forward_pooled`, batch 16, randomly initialised, on the Flex backend
//! (inference: no autodiff, batch norm uses running statistics).
//!
//! Prints images/second as `best / median` over the timed batches (best-of-N is the robust
//! figure on a shared machine). Run:
//! `cargo run -p caplab-models --example bench_encoders [-- ITERS]` (the dev profile builds
//! burn with opt-level 3, so no release build is needed).
//! PyTorch reference: `scripts/parity/bench_encoders.py`.

use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use caplab_models::encoder::{Arch, Backbone, EncoderConfig};

type B = Flex;

const BATCH: usize = 16;
const WARMUP: usize = 1;

/// Best and median images/second over `iters` timed batches of `arch`.
fn bench(arch: Arch, iters: usize) -> (f64, f64) {
    let device = Default::default();
    B::seed(&device, 0);
    let encoder = EncoderConfig::new(arch).init::<B>(&device);
    let size = arch.input_size() as usize;
    let x = Tensor::<B, 4>::random(
        [BATCH, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let measure = || {
        let start = Instant::now();
        let out = encoder.forward_pooled(x.clone());
        B::sync(&device).expect("backend sync");
        let _ = out.slice([0..1, 0..1]).into_data();
        BATCH as f64 / start.elapsed().as_secs_f64()
    };
    for _ in 0..WARMUP {
        measure();
    }
    let mut rates: Vec<f64> = (0..iters).map(|_| measure()).collect();
    rates.sort_by(|a, b| b.total_cmp(a));
    (rates[0], rates[rates.len() / 2])
}

fn main() {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!("batch {BATCH}, images/s: best / median of {iters}, burn Flex (CPU)");
    for arch in [Arch::Resnet50, Arch::InceptionV3] {
        let (best, median) = bench(arch, iters);
        println!(
            "burn     {:<13} {}px: {best:7.2} / {median:7.2} img/s",
            arch.name(),
            arch.input_size()
        );
    }
}
