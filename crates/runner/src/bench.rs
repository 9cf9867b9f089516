//! `caplab bench` (hidden): issue 15's GPU benchmarks of caplab's own code paths on any device,
//! run by `scripts/gpu/check.sh` side by side with the PyTorch scripts beside it. They live in
//! the `caplab` binary so that one binary is all a GPU machine needs.
//!
//! * `caplab bench train-step`: one decoder training step on cached features (`TrainModel`'s
//!   `TrainStep::step` and `optimize`: teacher-forced loss, backward, global-norm clipping,
//!   Adam); a 2048-d feature projected to the 256-d first step (Show and Tell), LSTM 256→512,
//!   Linear 512→V, T = 20. Prints ms per forward (loss, graph built) and per whole step, best /
//!   median. The step is split over `train.decoder_threads` shares, 2 as the spec's default
//!   (`CAPLAB_DECODER_THREADS=N` sets it). PyTorch: `scripts/gpu/bench_train_step.py`.
//! * `caplab bench decode` (alias `beam`): batched beam search k = 5 (`--search beam`, the
//!   default) or greedy search (`--search greedy`) over N random 2048-d features with an
//!   untrained decoder of the same shape (it rarely emits `<eos>`, so captions run to max_len on
//!   both sides), `--batch` images per search call (1: one image at a time). Same binary, same
//!   allocator and same search code as `caplab eval` and `caplab caption`. PyTorch:
//!   `scripts/gpu/bench_beam.py` (`just bench decode` runs both on the CPU).
//! * `caplab bench encoders`: frozen feature extraction, images/s through ResNet-50 (224 px)
//!   and Inception v3 (299 px) `forward_pooled`, batch 16, random weights, best / median of the
//!   timed batches. PyTorch: `scripts/parity/bench_encoders.py` (`just bench encoders`).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use burn::backend::Autodiff;
use burn::optim::AdamConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use burn::train::TrainStep;
use caplab_models::encoder::{Arch, Backbone as _, EncoderConfig};
use caplab_models::search::{in_shares, LengthPenalty, SearchSpec};
use caplab_models::{CaptionDecoder, Condition, DecoderSpec, ModelSpec};

use crate::backend::{resolve_flags, with_backend, Resolved};
use crate::batch::batch_features;
use crate::batch::CaptionBatch;
use crate::spec::{DeviceChoice, Precision};
use crate::train::loss::caption_loss;
use crate::train::step::TrainModel;

const TIME: usize = 20;
const FEATURES: usize = 2048;
const WARMUP: usize = 2;
const FEATURE_DIM: usize = FEATURES;
const MAX_LEN: usize = 20;
const BEAM: usize = 5;
const SOS: u32 = 1;
const EOS: u32 = 2;

/// A benchmark of `caplab bench …`.
#[derive(Debug)]
pub enum Bench {
    /// One decoder training step on cached features.
    TrainStep(TrainStepBench),
    /// Batched beam search k = 5, or greedy search.
    Decode(DecodeBench),
    /// Frozen feature extraction through ResNet-50 and Inception v3.
    Encoders(EncodersBench),
}

/// `caplab bench encoders`.
#[derive(Debug, Clone)]
pub struct EncodersBench {
    pub on: BenchDevice,
    /// Timed batches per encoder (after one warm-up batch).
    pub iters: usize,
    /// Images per batch.
    pub batch: usize,
}

/// Where and in what precision a benchmark runs.
#[derive(Debug, Clone)]
pub struct BenchDevice {
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:cpu or auto.
    pub device: DeviceChoice,
    /// f32, bf16 or f16 (CUDA only).
    pub precision: Precision,
}

/// `caplab bench train-step`.
#[derive(Debug, Clone)]
pub struct TrainStepBench {
    pub on: BenchDevice,
    /// Timed iterations (after 2 warm-up ones).
    pub iters: usize,
    /// Images per batch.
    pub images: usize,
    /// Captions per image (sequences = images × captions).
    pub captions: usize,
    /// Vocabulary size.
    pub vocab: usize,
}

/// `caplab bench decode`.
#[derive(Debug, Clone)]
pub struct DecodeBench {
    pub on: BenchDevice,
    /// beam (k = 5) or greedy.
    pub search: String,
    /// Images in all.
    pub images: usize,
    /// Images per search call.
    pub batch: usize,
    /// Vocabulary size.
    pub vocab: usize,
}

/// Runs a benchmark.
pub fn run(bench: &Bench) -> Result<()> {
    match bench {
        Bench::TrainStep(a) => {
            if a.iters == 0 || a.images == 0 || a.captions == 0 || a.vocab < 5 {
                anyhow::bail!("--iters, --images, --captions must be ≥ 1 and --vocab ≥ 5");
            }
            let resolved = resolve_flags(a.on.device, a.on.precision)?;
            let label = resolved.describe();
            with_backend!(resolved, Inner, device => train_step::<Autodiff<Inner>>(a, &label, device));
        }
        Bench::Decode(a) => {
            if a.images == 0 || a.batch == 0 || a.vocab < 5 {
                anyhow::bail!("--images and --batch must be ≥ 1 and --vocab ≥ 5");
            }
            let resolved = resolve_flags(a.on.device, a.on.precision)?;
            let mut label = resolved.describe();
            if matches!(resolved, Resolved::Cpu) {
                label += &format!(", {} threads", rayon::current_num_threads());
            }
            let threads = resolved.decode_threads();
            with_backend!(resolved, B, device => decode::<B>(a, &label, threads, device));
        }
        Bench::Encoders(a) => {
            if a.iters == 0 || a.batch == 0 {
                anyhow::bail!("--iters and --batch must be ≥ 1");
            }
            let resolved = resolve_flags(a.on.device, a.on.precision)?;
            let mut label = resolved.describe();
            if matches!(resolved, Resolved::Cpu) {
                label += &format!(", {} threads", rayon::current_num_threads());
            }
            println!(
                "caplab ({label}) batch {}, images/s: best / median of {}",
                a.batch, a.iters
            );
            for arch in [Arch::Resnet50, Arch::InceptionV3] {
                with_backend!(resolved, B, device => encoder::<B>(a, arch, device));
            }
        }
    }
    Ok(())
}

fn timing(mut times: Vec<f64>) -> String {
    times.sort_by(f64::total_cmp);
    format!("{:7.1} / {:7.1} ms", times[0], times[times.len() / 2])
}

fn train_step<B: AutodiffBackend>(cfg: &TrainStepBench, label: &str, device: &B::Device) {
    let (iters, images, captions, vocab) = (cfg.iters, cfg.images, cfg.captions, cfg.vocab);
    B::seed(device, 0);
    let spec: ModelSpec = toml::from_str(
        r#"
[encoder]
arch = "resnet50"
trainable = "frozen"

[decoder]
cell = "lstm"
embed_dim = 256
hidden_dim = 512
num_layers = 1
dropout = 0.0
condition = "first_step"
"#,
    )
    .expect("model spec");
    let mut model = TrainModel {
        captioner: spec.init::<B>(vocab, device),
        max_len: TIME,
        label_smoothing: 0.0,
        scheduled: None,
        steps: Arc::new(AtomicUsize::new(0)),
        steps_per_epoch: 1_000_000,
        seed: 1,
        finetune_after: None,
        finetune_lr: 0.0,
        clip_global_norm: Some(5.0),
        tally: Default::default(),
        xe_epochs: usize::MAX,
        scst: None,
        decoder_threads: std::env::var("CAPLAB_DECODER_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
        decode_threads: 1,
    };
    let mut optim = AdamConfig::new().init::<B, TrainModel<B>>();
    let n = images * captions;
    let tokens =
        |d| Tensor::<B, 2>::random([n, TIME], Distribution::Uniform(4.0, vocab as f64), d).int();
    let batch = CaptionBatch {
        images: Tensor::<B, 4>::random(
            [images, FEATURES, 1, 1],
            Distribution::Normal(0.0, 1.0),
            device,
        ),
        precomputed: true,
        inputs: tokens(device),
        targets: tokens(device),
        captions_per_image: captions,
        indices: (0..images).collect(),
    };
    let threads = rayon::current_num_threads();
    println!(
        "caplab ({}) B={images}×{captions} T={TIME} LSTM 256→512 V={vocab}, {threads} CPU threads, \
         best / median of {iters}",
        label
    );

    let forward = |model: &TrainModel<B>, batch: &CaptionBatch<B>| {
        let features =
            batch_features(&model.captioner, batch.images.clone(), true).repeat_rows(captions);
        let logits = model
            .captioner
            .forward_features(features, batch.inputs.clone())
            .logits;
        let (loss, _) = caption_loss(logits, batch.targets.clone(), 0.0);
        loss
    };
    let mut times = Vec::new();
    for i in 0..WARMUP + iters {
        let t = Instant::now();
        let loss = forward(&model, &batch);
        let _: Vec<f32> = loss.clone().into_data().iter::<f32>().collect();
        if i >= WARMUP {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        // Untimed: burn's autodiff frees a graph only in `backward`; a dropped loss would keep
        // every iteration's activations alive (PyTorch frees them when the loss is dropped).
        drop(loss.backward());
    }
    println!(
        "caplab   forward (loss, graph built):      {}",
        timing(times)
    );

    let mut times = Vec::new();
    for i in 0..WARMUP + iters {
        let t = Instant::now();
        let out = model.step(batch.clone());
        model = model.optimize::<B, _>(&mut optim, 1e-3, out.grads);
        B::sync(device).expect("sync");
        if i >= WARMUP {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "caplab   step (forward, backward, clip, Adam): {}",
        timing(times)
    );
}

/// Decodes `features` [N, F] with `search` (beam k = 5 or greedy) through the spec's
/// `SearchSpec::decode`, split over `threads` as `Captioner::caption` splits it; the words
/// decoded in all.
fn search<B: Backend>(
    decoder: &CaptionDecoder<B>,
    features: Tensor<B, 2>,
    search: &str,
    threads: usize,
) -> usize {
    let spec = if search == "greedy" {
        SearchSpec::Greedy { max_len: MAX_LEN }
    } else {
        SearchSpec::Beam {
            beam_size: BEAM,
            max_len: MAX_LEN,
            min_len: 0,
            length_penalty: LengthPenalty::None,
            alpha: 0.7,
            no_repeat_ngram_size: 0,
            suppress_unk: false,
        }
    };
    let [n, _] = features.dims();
    let device = features.device();
    let hyps = in_shares(n, threads, |from, len| {
        let state = decoder.start(features.clone().narrow(0, from, len));
        spec.decode(decoder, state, len, &device, SOS, EOS, None)
    });
    hyps.iter().map(|h| h.tokens.len()).sum()
}

fn decode<B: Backend>(cfg: &DecodeBench, label: &str, threads: usize, device: &B::Device) {
    B::seed(device, 0);
    let spec = DecoderSpec {
        embed_dim: 256,
        hidden_dim: 512,
        condition: Condition::FirstStep,
        ..DecoderSpec::default()
    };
    let decoder = spec.init::<B>(FEATURE_DIM, cfg.vocab, device);
    let features = Tensor::<B, 2>::random(
        [cfg.images, FEATURE_DIM],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let _ = search(
        &decoder,
        features.clone().narrow(0, 0, cfg.batch.min(cfg.images)),
        &cfg.search,
        threads,
    );
    B::sync(device).expect("sync");
    let start = Instant::now();
    let mut words = 0usize;
    for from in (0..cfg.images).step_by(cfg.batch) {
        let rows = cfg.batch.min(cfg.images - from);
        words += search(
            &decoder,
            features.clone().narrow(0, from, rows),
            &cfg.search,
            threads,
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let what = if cfg.search == "greedy" {
        "greedy".to_string()
    } else {
        format!("beam k={BEAM}")
    };
    println!(
        "caplab ({label}) {what} V={} max_len={MAX_LEN}: {} images, batch {}: {:.1} s, \
         {:.1} captions/s, {:.1} words/caption",
        cfg.vocab,
        cfg.images,
        cfg.batch,
        seconds,
        cfg.images as f64 / seconds,
        words as f64 / cfg.images as f64
    );
}

/// Images/s of `arch`'s `forward_pooled` (inference: batch norm on running statistics).
fn encoder<B: Backend>(cfg: &EncodersBench, arch: Arch, device: &B::Device) {
    B::seed(device, 0);
    let encoder = EncoderConfig::new(arch).init::<B>(device);
    let size = arch.input_size() as usize;
    let x = Tensor::<B, 4>::random(
        [cfg.batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let measure = || {
        let start = Instant::now();
        let out = encoder.forward_pooled(x.clone());
        let _ = out.slice([0..1, 0..1]).into_data();
        cfg.batch as f64 / start.elapsed().as_secs_f64()
    };
    measure();
    let mut rates: Vec<f64> = (0..cfg.iters).map(|_| measure()).collect();
    rates.sort_by(|a, b| b.total_cmp(a));
    println!(
        "caplab   {:<13} {}px: {:7.2} / {:7.2} img/s",
        arch.name(),
        size,
        rates[0],
        rates[rates.len() / 2]
    );
}
