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
//!   `--decoder transformer`: the `[model.transformer]` defaults (6 post-norm layers, d_model
//!   512, 8 heads, FFN 2048, dropout 0.1, sinusoidal positions) over a 7 × 7 grid of 2048-d
//!   features. PyTorch: `scripts/gpu/bench_transformer.py step`.
//! * `caplab bench decode` (alias `beam`): batched beam search k = 5 (`--search beam`, the
//!   default) or greedy search (`--search greedy`) over N random 2048-d features with an
//!   untrained decoder of the same shape (it rarely emits `<eos>`, so captions run to max_len on
//!   both sides), `--batch` images per search call (1: one image at a time). Same binary, same
//!   allocator and same search code as `caplab eval` and `caplab caption`. PyTorch:
//!   `scripts/gpu/bench_beam.py` (`just bench decode` runs both on the CPU).
//!   `--decoder transformer`: the same searches with the Transformer decoder above over a
//!   7 × 7 grid, once with its key/value cache (what `caplab eval` runs) and once without (each
//!   step runs the whole prefix through the teacher-forced forward, as a decoder without a cache
//!   does), and says whether both gave the same captions. PyTorch: `scripts/gpu/bench_transformer.py
//!   decode` (nn.TransformerDecoder has no cache).
//! * `caplab bench encoders`: frozen feature extraction, images/s through `--arch` (default
//!   ResNet-50 at 224 px and Inception v3 at 299 px; `vit_b_16` for issue 27) `forward_pooled`,
//!   batch 16, random weights, best / median of the timed batches. PyTorch:
//!   `scripts/parity/bench_encoders.py` (`just bench encoders`).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use burn::backend::Autodiff;
use burn::optim::AdamConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};
use burn::train::TrainStep;
use caplab_models::encoder::{Arch, Backbone as _, EncoderConfig};
use caplab_models::search::{in_shares, Hypothesis, LengthPenalty, SearchSpec, StepDecoder};
use caplab_models::transformer::{TransformerCaptionDecoder, TransformerSpec};
use caplab_models::{CaptionDecoder, Condition, DecoderSpec, ModelSpec};

use crate::backend::{resolve_flags, with_backend, Resolved};
use crate::batch::batch_features;
use crate::batch::CaptionBatch;
use crate::spec::{DeviceChoice, Precision};
use crate::train::loss::caption_loss;
use crate::train::step::TrainModel;

const TIME: usize = 20;
const FEATURES: usize = 2048;
/// Side of the feature grid the Transformer decoder attends (ResNet-50 at 224 px).
const GRID: usize = 7;
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
    /// The encoders, in order.
    pub archs: Vec<Arch>,
}

/// The decoder a benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchDecoder {
    /// Show and Tell's LSTM on a pooled feature.
    Lstm,
    /// The `[model.transformer]` defaults over a 7 × 7 grid.
    Transformer,
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
    pub decoder: BenchDecoder,
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
    pub decoder: BenchDecoder,
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
            match a.decoder {
                BenchDecoder::Lstm => {
                    with_backend!(resolved, B, device => decode::<B>(a, &label, threads, device))
                }
                BenchDecoder::Transformer => {
                    with_backend!(resolved, B, device => decode_transformer::<B>(a, &label, threads, device))
                }
            }
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
            for &arch in &a.archs {
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
    let decoder = match cfg.decoder {
        BenchDecoder::Lstm => {
            "[decoder]\ncell = \"lstm\"\nembed_dim = 256\nhidden_dim = 512\nnum_layers = 1\n\
             dropout = 0.0\ncondition = \"first_step\"\n"
        }
        // `[model.transformer]` with its defaults.
        BenchDecoder::Transformer => "[transformer]\n",
    };
    let spec: ModelSpec = toml::from_str(&format!(
        "[encoder]\narch = \"resnet50\"\ntrainable = \"frozen\"\n{decoder}"
    ))
    .expect("model spec");
    // Cached features: pooled `[N, 2048, 1, 1]` for the LSTM, a 7 × 7 grid for the transformer.
    let side = match cfg.decoder {
        BenchDecoder::Lstm => 1,
        BenchDecoder::Transformer => GRID,
    };
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
            [images, FEATURES, side, side],
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
    let network = match cfg.decoder {
        BenchDecoder::Lstm => "LSTM 256→512".to_string(),
        BenchDecoder::Transformer => {
            let t = TransformerSpec::default();
            format!(
                "Transformer {} layers d_model {} heads {} FFN {} dropout {} over {GRID}×{GRID}×{FEATURES}",
                t.num_layers, t.d_model, t.num_heads, t.d_ff, t.dropout
            )
        }
    };
    println!(
        "caplab ({}) B={images}×{captions} T={TIME} {network} V={vocab}, {threads} CPU threads, \
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

/// The search `caplab bench decode --search` names: beam k = 5 or greedy, `max_len` 20.
fn search_spec(search: &str) -> SearchSpec {
    if search == "greedy" {
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
    }
}

/// Decodes `n` rows with `search`, split over `threads` as `Captioner::caption` splits them;
/// `start(from, len)` is the decoder state of rows `from..from + len`.
fn decode_rows<B: Backend, D: StepDecoder<B> + Sync>(
    decoder: &D,
    start: impl Fn(usize, usize) -> D::State + Sync,
    n: usize,
    search: &str,
    threads: usize,
    device: &B::Device,
) -> Vec<Hypothesis> {
    let spec = search_spec(search);
    in_shares(n, threads, |from, len| {
        spec.decode(decoder, start(from, len), len, device, SOS, EOS, None)
    })
}

/// Decodes `features` [N, F] with the LSTM decoder; the words decoded in all.
fn search<B: Backend>(
    decoder: &CaptionDecoder<B>,
    features: Tensor<B, 2>,
    search: &str,
    threads: usize,
) -> usize {
    let [n, _] = features.dims();
    let device = features.device();
    let start = |from, len| decoder.start(features.clone().narrow(0, from, len));
    let hyps = decode_rows(decoder, start, n, search, threads, &device);
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

/// The transformer decoder without its key/value cache: each step runs the whole prefix
/// through the teacher-forced [`TransformerCaptionDecoder::forward`] (memory projections and
/// cross-attention keys and values included, as `nn.TransformerDecoder` does) and keeps the
/// last position.
struct Uncached<'a, B: Backend>(&'a TransformerCaptionDecoder<B>);

/// What [`Uncached`] carries: the grid `[N, L, D]` and the tokens fed so far `[N, t]`.
#[derive(Clone)]
struct Prefix<B: Backend> {
    grid: Tensor<B, 3>,
    tokens: Option<Tensor<B, 2, Int>>,
}

impl<B: Backend> StepDecoder<B> for Uncached<'_, B> {
    type State = Prefix<B>;

    fn step(&self, tokens: Tensor<B, 1, Int>, state: Prefix<B>) -> (Tensor<B, 2>, Prefix<B>) {
        let [n] = tokens.dims();
        let tokens = tokens.reshape([n, 1]);
        let prefix = match state.tokens {
            Some(past) => Tensor::cat(vec![past, tokens], 1),
            None => tokens,
        };
        let (logits, _) = self.0.forward(state.grid.clone(), prefix.clone());
        let [_, t, v] = logits.dims();
        let last = logits.narrow(1, t - 1, 1).reshape([n, v]);
        let state = Prefix {
            grid: state.grid,
            tokens: Some(prefix),
        };
        (log_softmax(last, 1), state)
    }

    fn select(&self, state: Prefix<B>, indices: Tensor<B, 1, Int>) -> Prefix<B> {
        Prefix {
            grid: state.grid.select(0, indices.clone()),
            tokens: state.tokens.map(|t| t.select(0, indices)),
        }
    }
}

/// Greedy or beam-5 decoding with the Transformer decoder (`[model.transformer]` defaults) over
/// random 7 × 7 × 2048 grids, with the key/value cache and without, timed one after the other.
fn decode_transformer<B: Backend>(
    cfg: &DecodeBench,
    label: &str,
    threads: usize,
    device: &B::Device,
) {
    B::seed(device, 0);
    let spec = TransformerSpec::default();
    let decoder = spec.init::<B>(FEATURE_DIM, cfg.vocab, device);
    let grids = Tensor::<B, 3>::random(
        [cfg.images, GRID * GRID, FEATURE_DIM],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let what = if cfg.search == "greedy" {
        "greedy".to_string()
    } else {
        format!("beam k={BEAM}")
    };
    println!(
        "caplab ({label}) Transformer {} layers d_model {} heads {} FFN {} over \
         {GRID}×{GRID}×{FEATURE_DIM}, {what} V={} max_len={MAX_LEN}: {} images, batch {}",
        spec.num_layers, spec.d_model, spec.num_heads, spec.d_ff, cfg.vocab, cfg.images, cfg.batch
    );
    let run = |cached: bool| -> (f64, Vec<Hypothesis>) {
        let batch = |from: usize, rows: usize| -> Vec<Hypothesis> {
            let grid = grids.clone().narrow(0, from, rows);
            if cached {
                let start = |f, l| decoder.start(grid.clone().narrow(0, f, l));
                decode_rows(&decoder, start, rows, &cfg.search, threads, device)
            } else {
                let start = |f, l| Prefix {
                    grid: grid.clone().narrow(0, f, l),
                    tokens: None,
                };
                decode_rows(
                    &Uncached(&decoder),
                    start,
                    rows,
                    &cfg.search,
                    threads,
                    device,
                )
            }
        };
        let _ = batch(0, cfg.batch.min(cfg.images).min(8));
        B::sync(device).expect("sync");
        let start = Instant::now();
        let mut hyps = Vec::with_capacity(cfg.images);
        for from in (0..cfg.images).step_by(cfg.batch) {
            hyps.extend(batch(from, cfg.batch.min(cfg.images - from)));
        }
        (start.elapsed().as_secs_f64(), hyps)
    };
    let (with_cache, cached) = run(true);
    let (without, uncached) = run(false);
    let words = cached.iter().map(|h| h.tokens.len()).sum::<usize>() as f64;
    let same = cached
        .iter()
        .zip(&uncached)
        .filter(|(a, b)| a.tokens == b.tokens)
        .count();
    let rate = |s: f64| cfg.images as f64 / s;
    println!(
        "caplab   with the key/value cache: {with_cache:7.2} s, {:7.2} captions/s, {:.1} words/caption",
        rate(with_cache),
        words / cfg.images as f64
    );
    println!(
        "caplab   without (prefix re-run):  {without:7.2} s, {:7.2} captions/s",
        rate(without)
    );
    println!(
        "caplab   cache speed-up {:.2}x; identical captions: {same} of {}",
        without / with_cache,
        cfg.images
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
