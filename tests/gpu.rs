//! The GPU path against the CPU backend (Flex), on the device `CAPLAB_GPU_TEST_DEVICE` names
//! (default: `wgpu:cpu`, Mesa's lavapipe in CI, in a `--features vulkan` build; `cuda` in a
//! `--features cuda` build, as `scripts/gpu/check.sh` runs it).
//!
//! - one training step (loss and every gradient) for an encoder of each family and each decoder;
//! - encoder features of resnet18, vgg11 and inception_v3;
//! - a tiny run end to end, kill -9 and resume, f16, one SCST epoch;
//! - checkpoints moving between the GPU and the CPU (captions identical).
//!
//! Tolerances are stated where they are asserted; docs/gpu.md lists them with what was measured.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

mod common;

use std::path::Path;
use std::process::Command;

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use caplab_models::encoder::Backbone;
use caplab_runner::backend::{resolve_flags, Resolved};
use caplab_runner::spec::{DeviceChoice, Precision, Spec};
use caplab_runner::train::loss::caption_loss;
use common::*;

/// The device under test, as `experiment.device` spells it.
fn gpu_name() -> String {
    std::env::var("CAPLAB_GPU_TEST_DEVICE").unwrap_or_else(|_| {
        if cfg!(feature = "wgpu") {
            "wgpu:cpu".into()
        } else {
            "cuda".into()
        }
    })
}

fn gpu(precision: Precision) -> Resolved {
    let choice = DeviceChoice::parse(&gpu_name()).expect("CAPLAB_GPU_TEST_DEVICE parses");
    resolve_flags(choice, precision).expect("the GPU under test resolves")
}

/// A spec with `extra` TOML appended to an experiment section (model keys are what matter).
fn spec(model: &str) -> Spec {
    let text = format!(
        "[experiment]\nname = \"gpu\"\ndevice = \"cpu\"\n[data]\nkind = \"synth\"\nroot = \"x\"\n{model}"
    );
    toml::from_str(&text).expect("test spec parses")
}

/// Inputs of one training step: images `[N, 3, S, S]`, caption inputs and targets `[N, T]`.
struct StepInputs {
    n: usize,
    size: usize,
    images: Vec<f32>,
    inputs: Vec<i64>,
    targets: Vec<i64>,
    t: usize,
}

impl StepInputs {
    fn new(n: usize, size: usize, t: usize, vocab: usize) -> Self {
        // A fixed pseudo-random sequence (no RNG crate needed, the same on every machine).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let images = (0..n * 3 * size * size)
            .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        // Tokens ≥ 4 (past <pad>, <bos>, <eos>, <unk>); the targets end in <pad> for one row.
        let inputs = (0..n * t)
            .map(|_| 4 + (next() % (vocab as u64 - 4)) as i64)
            .collect();
        let mut targets: Vec<i64> = (0..n * t)
            .map(|_| 4 + (next() % (vocab as u64 - 4)) as i64)
            .collect();
        targets[t - 1] = 0;
        Self {
            n,
            size,
            images,
            inputs,
            targets,
            t,
        }
    }
}

/// Every parameter's gradient, by module path.
struct Grads<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    path: Vec<String>,
    out: Vec<(String, Vec<f32>)>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = param.grad(self.grads) {
            let values = g
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("f32 grad");
            self.out.push((self.path.join("."), values));
        }
    }
}

/// Loss and gradients of one teacher-forced step of `model_toml`'s captioner with the weights in
/// `record` (made on Flex), on backend `B`.
fn step<B: AutodiffBackend>(
    spec: &Spec,
    vocab: usize,
    record: &[u8],
    x: &StepInputs,
    device: &B::Device,
) -> (f64, Vec<(String, Vec<f32>)>) {
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(record.to_vec(), device)
        .expect("the Flex record loads");
    let model = spec.model.init::<B>(vocab, device).load_record(record);
    let images = Tensor::<B, 4>::from_data(
        TensorData::new(x.images.clone(), [x.n, 3, x.size, x.size]),
        device,
    );
    let inputs =
        Tensor::<B, 2, Int>::from_data(TensorData::new(x.inputs.clone(), [x.n, x.t]), device);
    let targets =
        Tensor::<B, 2, Int>::from_data(TensorData::new(x.targets.clone(), [x.n, x.t]), device);
    let out = model.forward(images, inputs, 1);
    let (loss, _) = caption_loss(out.logits, targets, 0.1);
    let value = loss
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("loss")[0];
    let grads = loss.backward();
    let mut visitor = Grads::<B> {
        grads: &grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    (value, visitor.out)
}

/// `max |a − b| / max |b|` (0 when both are zero; infinite when either has a NaN, which
/// `f64::max` would otherwise skip).
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    if a.iter().chain(b).any(|v| v.is_nan()) {
        return f64::INFINITY;
    }
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// Whether the device under test can hold a tensor of `bytes` (wgpu adapters bind at most
/// `max_binding_bytes` per buffer: lavapipe 128 MiB, too little for VGG's 411 MB `fc6`).
fn holds(bytes: u64) -> bool {
    match binding_limit() {
        Some(limit) if bytes > limit => {
            eprintln!(
                "NOT RUN on {}: a {bytes}-byte tensor exceeds the adapter's {limit}-byte binding limit",
                gpu_name()
            );
            false
        }
        _ => true,
    }
}

/// VGG's `fc6` weight in bytes (25088 × 4096 f32).
const VGG_FC6_BYTES: u64 = 25088 * 4096 * 4;

/// Runs `body` on the GPU under test's f32 backend.
macro_rules! on_gpu {
    ($b:ident, $device:ident => $body:expr) => {{
        let r = (|| -> anyhow::Result<_> {
            caplab_runner::backend::with_backend!(gpu(Precision::F32), $b, $device => Ok($body))
        })();
        r.expect("runs on the GPU under test")
    }};
}

/// The record of `spec`'s captioner over `vocab` words, initialised on Flex from seed 11.
fn seeded_record(spec: &Spec, vocab: usize) -> Vec<u8> {
    let device = Default::default();
    Flex::seed(&device, 11);
    let model = spec.model.init::<Autodiff<Flex>>(vocab, &device);
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(model.valid().into_record(), ())
        .expect("record")
}

/// A step's loss and each parameter's gradient by module path.
type StepResult = (f64, Vec<(String, Vec<f32>)>);

/// One step's loss and gradients on Flex and on the GPU under test, from the same seeded Flex
/// weights (carried as a record).
fn step_on_both(spec: &Spec, vocab: usize, x: &StepInputs) -> (StepResult, StepResult) {
    let record = seeded_record(spec, vocab);
    let cpu = step::<Autodiff<Flex>>(spec, vocab, &record, x, &Default::default());
    let gpu = on_gpu!(G, device => step::<Autodiff<G>>(spec, vocab, &record, x, device));
    (cpu, gpu)
}

/// Training-step tolerance: loss within 1e-4 relative, each gradient tensor within 2e-3 of its
/// own largest value (f32 sums in another order over thousands of terms, through batch norm).
/// Batch norm in training mode must normalise over more than a handful of values: over 2 (a
/// 1 × 1 map, 2 images) its input gradient is pure cancellation and no two backends agree, so
/// each case keeps N·H·W ≥ 8 at the last block (resnet_tiny at 64 px with 4 images, Inception v3
/// at 107 px: a 2 × 2 map).
const STEP_LOSS_TOL: f64 = 1e-4;
const STEP_GRAD_TOL: f64 = 2e-3;

#[test]
fn one_training_step_matches_flex_for_resnet_and_vgg_and_each_decoder() {
    let vocab = 40;
    let cases = [
        ("resnet_tiny + lstm", "[model.encoder]\narch = \"resnet_tiny\"\n[model.decoder]\nembed_dim = 16\nhidden_dim = 24\ncell = \"lstm\"\n", 64, 4),
        ("resnet_tiny + gru", "[model.encoder]\narch = \"resnet_tiny\"\n[model.decoder]\nembed_dim = 16\nhidden_dim = 24\ncell = \"gru\"\n", 64, 4),
        ("resnet_tiny + attention", "[model.encoder]\narch = \"resnet_tiny\"\n[model.attention]\nembed_dim = 16\nhidden_dim = 24\nattention_dim = 20\ndropout = 0.0\n", 64, 4),
        ("vgg11 + attention", "[model.encoder]\narch = \"vgg11\"\n[model.attention]\nembed_dim = 16\nhidden_dim = 24\nattention_dim = 20\ndropout = 0.0\n", 32, 2),
        ("vgg11 + lstm", "[model.encoder]\narch = \"vgg11\"\n[model.decoder]\nembed_dim = 16\nhidden_dim = 24\n", 32, 2),
    ];
    for (name, model, size, n) in cases {
        let grad_tol = STEP_GRAD_TOL;
        // VGG builds fc6 and fc7 only for the LSTM decoder's pooled feature.
        if name == "vgg11 + lstm" && !holds(VGG_FC6_BYTES) {
            continue;
        }
        let spec = spec(model);
        let x = StepInputs::new(n, size, 6, vocab);
        let ((cpu_loss, cpu_grads), (gpu_loss, gpu_grads)) = step_on_both(&spec, vocab, &x);
        let loss_err = (gpu_loss - cpu_loss).abs() / cpu_loss.abs();
        assert!(
            loss_err <= STEP_LOSS_TOL,
            "{name}: loss {gpu_loss} vs {cpu_loss} (rel {loss_err:e})"
        );
        assert_eq!(
            cpu_grads.len(),
            gpu_grads.len(),
            "{name}: the same parameters have gradients"
        );
        assert!(
            cpu_grads.len() > 10,
            "{name}: encoder and decoder gradients ({})",
            cpu_grads.len()
        );
        let mut worst = (0.0, String::new());
        let mut bad = Vec::new();
        let largest = |v: &[f32]| v.iter().fold(0f64, |m, x| m.max(x.abs() as f64));
        let global = cpu_grads.iter().fold(0f64, |m, (_, c)| m.max(largest(c)));
        for ((path, c), (gpath, g)) in cpu_grads.iter().zip(&gpu_grads) {
            assert_eq!(path, gpath);
            // A gradient that is zero in exact arithmetic (the bias before a softmax over
            // locations) is rounding noise on both backends: both must stay that small.
            if largest(c) < 1e-5 * global {
                if largest(g) > 1e-5 * global {
                    bad.push(format!("{path}: {:.2e} where the CPU has ~0", largest(g)));
                }
                continue;
            }
            let e = rel_err(g, c);
            if e > worst.0 {
                worst = (e, path.clone());
            }
            if e > grad_tol {
                bad.push(format!("{path}: {e:.2e}"));
            }
        }
        assert!(
            bad.is_empty(),
            "{name}: gradients beyond {grad_tol:e} of their scale:\n{}",
            bad.join("\n")
        );
        eprintln!(
            "{name}: loss rel err {loss_err:.2e}, worst gradient rel err {:.2e} ({})",
            worst.0, worst.1
        );
    }
}

/// The decoder's gradients after Inception v3, against f64: within 1e-2 of their scale (measured
/// 2026-12-06: the worst, `project.weight`, 4.7e-3 on lavapipe and 2.9e-3 on Flex).
const INCEPTION_DECODER_TOL: f64 = 1e-2;

/// Inception v3's training step against an f64 reference (burn's NdArray in f64, the same
/// weights). Its encoder gradients are not reproducible in f32 on any backend: at 107 px the
/// `mixed_6`/`mixed_7` blocks see 5 × 5 and 2 × 2 maps, batch norm normalises over a few dozen
/// values, and rounding-level changes flip activations near zero. Flex, NdArray in f32 and the
/// GPU each land 1–20 % of a tensor's scale from the f64 gradient, each in different layers
/// (docs/gpu.md, "What the suite found"). So the GPU is held to Flex's own distance from f64: at
/// the median and at the worst encoder parameter, within a factor of 2 of it, and every encoder
/// gradient below 0.5 of its scale (a wrong kernel, like burn's 1 × 1 stride-2 input gradient,
/// is ≈ 1). The loss is held to 1e-4 of f64's; the decoder's gradients, which see the encoder's
/// training-mode features, to [`INCEPTION_DECODER_TOL`].
#[test]
fn inception_v3_training_step_gradients_are_as_close_to_f64_as_flexs() {
    type Cpu = Autodiff<Flex>;
    type Reference = Autodiff<burn::backend::NdArray<f64>>;
    let vocab = 40;
    let spec = spec(
        "[model.encoder]\narch = \"inception_v3\"\n[model.decoder]\nembed_dim = 16\nhidden_dim = 24\n",
    );
    let x = StepInputs::new(2, 107, 6, vocab);
    let record = seeded_record(&spec, vocab);
    let (cpu_loss, cpu_grads) = step::<Cpu>(&spec, vocab, &record, &x, &Default::default());
    let (ref_loss, ref_grads) = step::<Reference>(&spec, vocab, &record, &x, &Default::default());
    let (gpu_loss, gpu_grads) =
        on_gpu!(G, device => step::<Autodiff<G>>(&spec, vocab, &record, &x, device));
    for (name, loss) in [("Flex", cpu_loss), ("GPU", gpu_loss)] {
        let e = (loss - ref_loss).abs() / ref_loss.abs();
        assert!(e <= STEP_LOSS_TOL, "{name} loss {loss} vs f64 {ref_loss}");
    }
    assert_eq!(gpu_grads.len(), ref_grads.len());
    assert_eq!(cpu_grads.len(), ref_grads.len());
    let mut gpu_enc = Vec::new();
    let mut cpu_enc = Vec::new();
    for ((path, r), ((cpath, c), (gpath, g))) in
        ref_grads.iter().zip(cpu_grads.iter().zip(&gpu_grads))
    {
        assert!(path == cpath && path == gpath, "{path} / {cpath} / {gpath}");
        if path.starts_with("encoder.") {
            gpu_enc.push((rel_err(g, r), path.clone()));
            cpu_enc.push(rel_err(c, r));
        } else {
            let e = rel_err(g, r);
            assert!(
                e <= INCEPTION_DECODER_TOL,
                "decoder gradient {path}: {e:e} from f64's (Flex: {:e})",
                rel_err(c, r)
            );
        }
    }
    assert!(gpu_enc.len() > 200, "every Inception layer has gradients");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let worst_gpu =
        gpu_enc
            .iter()
            .cloned()
            .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    let worst_cpu = cpu_enc.iter().cloned().fold(0.0, f64::max);
    let median_gpu = median(&mut gpu_enc.iter().map(|(e, _)| *e).collect());
    let median_cpu = median(&mut cpu_enc.clone());
    eprintln!(
        "inception_v3 (107 px), encoder gradients against f64: GPU median {median_gpu:.2e}, worst \
         {:.2e} ({}); Flex median {median_cpu:.2e}, worst {worst_cpu:.2e}",
        worst_gpu.0, worst_gpu.1
    );
    assert!(
        median_gpu <= 2.0 * median_cpu && worst_gpu.0 <= 2.0 * worst_cpu,
        "the GPU is farther from f64 than twice Flex's distance: median {median_gpu:e} vs \
         {median_cpu:e}, worst {:e} ({}) vs {worst_cpu:e}",
        worst_gpu.0,
        worst_gpu.1
    );
    assert!(worst_gpu.0 < 0.5, "{}: {:e}", worst_gpu.1, worst_gpu.0);
}

/// The encoder's pooled feature (empty for an encoder built without it) and spatial grid of
/// `x`'s images, as f32 values.
fn encode<B: Backend>(
    model: &caplab_models::Captioner<B>,
    x: &StepInputs,
    device: &B::Device,
) -> (Vec<f32>, Vec<f32>) {
    let images = || {
        Tensor::<B, 4>::from_data(
            TensorData::new(x.images.clone(), [x.n, 3, x.size, x.size]),
            device,
        )
    };
    let values = |d: TensorData| d.convert::<f32>().to_vec::<f32>().expect("f32 features");
    let pooled = if model.encoder.has_pooled() {
        values(model.encoder.forward_pooled(images()).into_data())
    } else {
        Vec::new()
    };
    (
        pooled,
        values(model.encoder.forward_spatial(images()).into_data()),
    )
}

/// Encoder features within 1e-4 relative (the bound), same weights on both backends.
const FEATURE_TOL: f64 = 1e-4;

#[test]
fn encoder_features_of_resnet18_vgg11_and_inception_v3_match_flex() {
    for (arch, size) in [("resnet18", 64), ("vgg11", 64), ("inception_v3", 75)] {
        // Under an LSTM decoder the encoder has its pooled layers (VGG's fc6 and fc7); under an
        // attention decoder a VGG is built without them, which lets its grid be compared where
        // fc6 exceeds the adapter's binding limit.
        let decoder = if arch.starts_with("vgg") && !holds(VGG_FC6_BYTES) {
            "[model.attention]\nembed_dim = 8\nhidden_dim = 8\nattention_dim = 8\n"
        } else {
            "[model.decoder]\nembed_dim = 8\nhidden_dim = 8\n"
        };
        let spec = spec(&format!("[model.encoder]\narch = \"{arch}\"\n{decoder}"));
        let x = StepInputs::new(2, size, 1, 8);
        let cpu_device = Default::default();
        Flex::seed(&cpu_device, 5);
        let model = spec.model.init::<Flex>(8, &cpu_device);
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .record(model.clone().into_record(), ())
            .expect("record");
        // Both sides load the record (burn initialises parameters lazily: a clone's record and the
        // original would draw different values).
        let cpu = {
            let record = BinBytesRecorder::<FullPrecisionSettings>::default()
                .load(record.clone(), &cpu_device)
                .expect("the Flex record loads");
            encode(
                &spec.model.init::<Flex>(8, &cpu_device).load_record(record),
                &x,
                &cpu_device,
            )
        };
        let gpu = on_gpu!(G, device => {
            let record = BinBytesRecorder::<FullPrecisionSettings>::default()
                .load(record.clone(), device)
                .expect("the Flex record loads");
            encode(&spec.model.init::<G>(8, device).load_record(record), &x, device)
        });
        let (ep, eg) = (rel_err(&gpu.0, &cpu.0), rel_err(&gpu.1, &cpu.1));
        if cpu.0.is_empty() {
            eprintln!("{arch} at {size} px: grid rel err {eg:.2e}; pooled (fc7) NOT RUN");
        } else {
            eprintln!("{arch} at {size} px: pooled rel err {ep:.2e}, grid rel err {eg:.2e}");
        }
        assert!(
            ep <= FEATURE_TOL && eg <= FEATURE_TOL,
            "{arch}: {ep:e} / {eg:e}"
        );
    }
}

/// The tiny spec on the device under test, a little smaller for a software GPU.
fn gpu_spec(epochs: usize) -> String {
    TINY_SPEC
        .replace("device = \"cpu\"", &format!("device = \"{}\"", gpu_name()))
        .replace("epochs = 3", &format!("epochs = {epochs}"))
}

fn run_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let o = caplab(dir, args);
    assert!(o.status.success(), "caplab {args:?} failed: {}", stderr(&o));
    o
}

fn only_run(dir: &Path, name: &str) -> std::path::PathBuf {
    let runs = run_dirs(&dir.join("runs").join(name));
    assert_eq!(runs.len(), 1, "one run of {name}");
    runs[0].clone()
}

#[test]
fn a_tiny_run_trains_evaluates_reports_and_resumes_within_the_run_to_run_spread_on_the_gpu() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), &gpu_spec(3));
    let args = ["run", "tiny.toml", "--quiet"];
    run_ok(dir, &args);
    let whole = only_run(dir, "tiny");
    let report = report_of(&whole);
    let device = report["device"].as_str().unwrap_or_default().to_string();
    let expected_device = gpu_name().split(':').next().unwrap_or_default().to_string();
    assert!(
        device.starts_with(&expected_device),
        "report names the device: {device:?}"
    );
    for f in ["report.md", "report.html", "captions.json", "history.jsonl"] {
        assert!(whole.join(f).is_file(), "{f}");
    }
    let tb = std::fs::read_dir(whole.join("tensorboard"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(tb > 0, "TensorBoard events written");
    let expected = outcome(&whole);

    // A second uninterrupted run: how far two runs on this backend differ. lavapipe is not
    // run-to-run deterministic (a train loss differs in its 7th digit between two runs), so the
    // resumed run is held to that measured spread, not to equality.
    run_ok(dir, &args);
    let runs = run_dirs(&dir.join("runs/tiny"));
    let again = outcome(&runs[1]);
    let spread = max_rel_diff(&again.0, &expected.0);
    eprintln!(
        "two uninterrupted runs on {}: max relative difference {spread:.2e}",
        gpu_name()
    );
    assert!(spread < 1e-3, "two uninterrupted runs differ by {spread:e}");

    // kill -9 after the first checkpoint, then resume: the uninterrupted result, within the
    // spread of two uninterrupted runs (exactly, where those were identical).
    let run = run_and_kill(dir, &args, &|run: &Path| {
        run.join("checkpoint/scheduler-1.mpk").is_file()
    });
    run_ok(dir, &["resume", &run.to_string_lossy(), "--quiet"]);
    let resumed = outcome(&run);
    let diff = max_rel_diff(&resumed.0, &expected.0);
    eprintln!("resumed after kill -9: max relative difference {diff:.2e}");
    assert!(
        diff <= spread.max(1e-12) * 10.0,
        "resumed after kill -9 on {}: {diff:e} beyond 10 x the two-run spread {spread:e}",
        gpu_name()
    );
    if again.1 == expected.1 {
        assert_eq!(resumed.1, expected.1, "resumed captions");
    }
}

/// The largest relative difference between two JSON values' numbers; every other leaf and the
/// shape must be equal.
fn max_rel_diff(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            if x == y {
                0.0
            } else {
                (x - y).abs() / x.abs().max(y.abs())
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "array lengths");
            x.iter()
                .zip(y)
                .fold(0.0, |m, (a, b)| m.max(max_rel_diff(a, b)))
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.iter()
                .fold(0.0, |m, (k, a)| m.max(max_rel_diff(a, &y[k])))
        }
        _ => {
            assert_eq!(a, b);
            0.0
        }
    }
}

#[test]
fn f16_training_is_refused_with_its_reason_and_f16_evaluation_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), &gpu_spec(2));
    // Pure-f16 training diverges on burn 0.21 (NaN from the first epoch on lavapipe, measured):
    // refused before a run directory exists.
    let o = caplab(
        dir,
        &[
            "run",
            "tiny.toml",
            "--quiet",
            "--set",
            "experiment.precision=\"f16\"",
        ],
    );
    assert!(!o.status.success(), "f16 training was accepted");
    assert!(
        stderr(&o).contains("experiment.precision = \"f16\" does not train on wgpu"),
        "{}",
        stderr(&o)
    );
    assert!(
        run_dirs(&dir.join("runs/tiny")).is_empty(),
        "no run directory"
    );
    // An f32 run evaluates in f16 on the same adapter.
    run_ok(dir, &["run", "tiny.toml", "--quiet"]);
    let run = only_run(dir, "tiny");
    run_ok(
        dir,
        &[
            "eval",
            &run.to_string_lossy(),
            "--quiet",
            "--set",
            "experiment.precision=\"f16\"",
        ],
    );
    let evals = run_dirs(&run.join("evals"));
    let report = report_of(evals.last().expect("an eval"));
    let device = report["device"].as_str().unwrap_or_default();
    assert!(device.contains("f16"), "the eval report says f16: {device}");
    let f32_captions = std::fs::read_to_string(run.join("captions.json")).expect("captions");
    let f16_captions =
        std::fs::read_to_string(evals[0].join("captions.json")).expect("f16 captions");
    eprintln!(
        "f16 evaluation: captions {} the f32 run's",
        if f16_captions == f32_captions {
            "equal"
        } else {
            "differ from"
        }
    );
}

#[test]
fn one_scst_epoch_runs_on_the_gpu() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = gpu_spec(1)
        + "\n[train.scst]\nepochs = 1\nlr = 1e-3\nsamples_per_image = 3\nmax_len = 10\n";
    write(&dir.join("tiny.toml"), &spec);
    run_ok(dir, &["run", "tiny.toml", "--quiet"]);
    let run = only_run(dir, "tiny");
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let last: serde_json::Value =
        serde_json::from_str(history.lines().last().expect("epochs")).expect("line");
    assert_eq!(last["phase"], "scst");
    let reward = last["train"]["Reward"].as_f64().expect("reward");
    assert!(reward.is_finite() && reward >= 0.0);
    let cider = report_of(&run)["test"][0]["metrics"]["CIDEr"].as_f64();
    assert!(
        cider.is_some_and(f64::is_finite),
        "test CIDEr of the SCST model: {cider:?}"
    );
}

/// `caplab caption RUN <test images> --json` on `device` with `search` flags.
fn captions(dir: &Path, run: &Path, device: &str, search: &[&str]) -> String {
    let images = dir.join("shapes/images");
    let mut args = vec![
        "caption".to_string(),
        run.to_string_lossy().into_owned(),
        images.to_string_lossy().into_owned(),
        "--json".into(),
        "--quiet".into(),
        "--device".into(),
        device.into(),
    ];
    args.extend(search.iter().map(|s| s.to_string()));
    let o = Command::new(bin())
        .current_dir(dir)
        .args(&args)
        .output()
        .expect("caplab caption runs");
    assert!(o.status.success(), "caption on {device}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn checkpoints_move_between_the_gpu_and_the_cpu_with_identical_captions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("cpu.toml"),
        &TINY_SPEC.replace("epochs = 3", "epochs = 2"),
    );
    write(
        &dir.join("gpu.toml"),
        &gpu_spec(2).replace("name = \"tiny\"", "name = \"on_gpu\""),
    );
    run_ok(dir, &["run", "cpu.toml", "--quiet"]);
    run_ok(dir, &["run", "gpu.toml", "--quiet"]);
    let cpu_run = only_run(dir, "tiny");
    let gpu_run = only_run(dir, "on_gpu");
    let gpu = gpu_name();

    // A CPU-trained checkpoint: greedy and beam-3 captions on the GPU equal the CPU's.
    for search in [
        &["--search", "greedy"][..],
        &["--search", "beam", "--beam-size", "3"],
    ] {
        let on_cpu = captions(dir, &cpu_run, "cpu", search);
        let on_gpu = captions(dir, &cpu_run, &gpu, search);
        assert!(on_cpu.lines().count() > 10, "captions of every image");
        assert_eq!(
            on_gpu, on_cpu,
            "{search:?}: GPU captions of the CPU-trained run"
        );
    }
    // A GPU-trained checkpoint captions the same on the CPU.
    for search in [
        &["--search", "greedy"][..],
        &["--search", "beam", "--beam-size", "3"],
    ] {
        let on_cpu = captions(dir, &gpu_run, "cpu", search);
        let on_gpu = captions(dir, &gpu_run, &gpu, search);
        assert_eq!(
            on_cpu, on_gpu,
            "{search:?}: CPU captions of the GPU-trained run"
        );
    }
    // `caplab eval --device cpu` of the GPU run reproduces the run's own test captions, and
    // `caplab eval --device <gpu>` of the CPU run the CPU run's.
    for (run, device) in [(&gpu_run, "cpu"), (&cpu_run, gpu.as_str())] {
        run_ok(
            dir,
            &[
                "eval",
                &run.to_string_lossy(),
                "--quiet",
                "--device",
                device,
            ],
        );
        let evals = run_dirs(&run.join("evals"));
        let eval_dir = evals.last().expect("an eval directory");
        let own = std::fs::read_to_string(run.join("captions.json")).expect("run captions");
        let again = std::fs::read_to_string(eval_dir.join("captions.json")).expect("eval captions");
        assert_eq!(again, own, "eval of {} on {device}", run.display());
    }
}

/// The adapter's per-tensor limit in bytes, when the device under test is a wgpu adapter.
fn binding_limit() -> Option<u64> {
    #[cfg(feature = "wgpu")]
    if let Resolved::Wgpu { adapter, .. } = gpu(Precision::F32) {
        return Some(caplab_runner::backend::wgpu::adapters()[adapter.index].max_binding_bytes);
    }
    None
}

/// A model whose largest parameter exceeds the adapter's per-tensor limit (VGG's `fc6` on
/// lavapipe) is refused before anything is created, naming the parameter, its size and the
/// limit: by `caplab features` and by `caplab run`. An activation over the limit (resnet18's
/// first feature map for 16 images of 448 px: 205 MB) can only fail inside cubecl, and the
/// panic is followed by caplab's explanation, and the command stops with an error.
#[test]
fn tensors_over_the_adapters_binding_limit_are_refused_or_explained() {
    let Some(limit) = binding_limit().filter(|&l| l < VGG_FC6_BYTES) else {
        eprintln!(
            "(on {}: no binding limit below VGG's fc6, nothing to refuse)",
            gpu_name()
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    run_ok(
        dir,
        &[
            "data", "synth", "--out", "shapes", "--images", "16", "--size", "64", "--seed", "5",
        ],
    );
    let device = gpu_name();
    let o = caplab(
        dir,
        &[
            "features",
            "--encoder",
            "vgg11",
            "--images",
            "shapes/images",
            "--size",
            "32",
            "--device",
            &device,
            "--out",
            "vgg.safetensors",
            "--quiet",
        ],
    );
    let e = stderr(&o);
    assert!(!o.status.success(), "vgg11 features ran on {device}");
    assert!(
        e.contains(
            "--encoder vgg11: parameter classifier.0.weight [4096, 25088] takes 411 MB in f32"
        ) && e.contains("max_storage_buffer_binding_size")
            && e.contains(&format!("({:.0} MiB", limit as f64 / (1u64 << 20) as f64)),
        "{e}"
    );
    assert!(!e.contains("panicked"), "refused before burn ran: {e}");
    assert!(!dir.join("vgg.safetensors").exists());

    let spec = gpu_spec(1).replace("arch = \"resnet_tiny\"", "arch = \"vgg11\"");
    write(&dir.join("vgg.toml"), &spec);
    let o = caplab(dir, &["run", "vgg.toml", "--quiet"]);
    let e = stderr(&o);
    assert!(!o.status.success(), "a vgg11 run started on {device}");
    assert!(
        e.contains("model.encoder.arch = \"vgg11\": parameter encoder.classifier.0.weight"),
        "{e}"
    );
    assert!(
        run_dirs(&dir.join("runs").join("tiny")).is_empty(),
        "no run directory"
    );

    let o = caplab(
        dir,
        &[
            "features",
            "--encoder",
            "resnet18",
            "--images",
            "shapes/images",
            "--size",
            "448",
            "--batch-size",
            "16",
            "--device",
            &device,
            "--out",
            "r.safetensors",
            "--quiet",
        ],
    );
    let e = stderr(&o);
    assert!(
        !o.status.success(),
        "a 205 MB activation fit under {limit} bytes"
    );
    assert!(
        e.contains("caplab: the device could not allocate one buffer of 205520896 bytes")
            && e.contains("lower train.batch_size")
            && e.contains("caplab stops rather than go on with tensors that were never computed"),
        "{e}"
    );
    // cubecl swallows the device thread's panic: without caplab's hook the command went on and
    // wrote a feature file of values never computed, and exited 0.
    assert!(!dir.join("r.safetensors").exists(), "no feature file");
}

/// The input gradient of `conv2d` (burn's own op) for `x` `[2, 8, 8, 8]` and a `[16, 8, k, k]`
/// kernel, with fixed values.
fn conv_input_grad<B: AutodiffBackend>(
    stride: usize,
    padding: usize,
    k: usize,
    device: &B::Device,
) -> Vec<f32> {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    let xs: Vec<f32> = (0..2 * 8 * 8 * 8)
        .map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
        .collect();
    let ws: Vec<f32> = (0..16 * 8 * k * k)
        .map(|i| ((i * 53 % 97) as f32) / 48.0 - 1.0)
        .collect();
    let x = Tensor::<B, 4>::from_data(TensorData::new(xs, [2, 8, 8, 8]), device).require_grad();
    let w = Tensor::<B, 4>::from_data(TensorData::new(ws, [16, 8, k, k]), device);
    let options = ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1);
    let y = conv2d(x.clone(), w, None, options);
    let dims = y.dims();
    let weights: Vec<f32> = (0..dims.iter().product::<usize>())
        .map(|i| ((i * 7 % 13) as f32) - 6.0)
        .collect();
    let grads = (y * Tensor::from_data(TensorData::new(weights, dims), device))
        .sum()
        .backward();
    let g = x.grad(&grads).expect("x requires grad");
    g.into_data().convert::<f32>().to_vec::<f32>().expect("f32")
}

/// burn 0.21 alone: the input gradient of a 1 × 1, stride-2, unpadded convolution on the GPU
/// backend against burn's NdArray. It is wrong on wgpu (lavapipe), which is why caplab's
/// encoders compute that convolution as a stride-1 convolution of every second pixel off the
/// CPU (crates/models/src/encoder/conv.rs, `strided_pointwise`). This test asserts the bug as it
/// is, so that the day burn fixes it, it fails and the workaround can go.
#[test]
fn burn_conv2d_input_gradient_1x1_stride_2() {
    type Nd = Autodiff<burn::backend::NdArray>;
    for (stride, padding, k) in [(1, 1, 3), (2, 1, 3), (1, 0, 1)] {
        let reference = conv_input_grad::<Nd>(stride, padding, k, &Default::default());
        let got = on_gpu!(G, device => conv_input_grad::<Autodiff<G>>(stride, padding, k, device));
        let e = rel_err(&got, &reference);
        assert!(
            e <= 1e-5,
            "stride {stride} padding {padding} {k}x{k}: {e:e}"
        );
    }
    let reference = conv_input_grad::<Nd>(2, 0, 1, &Default::default());
    let got = on_gpu!(G, device => conv_input_grad::<Autodiff<G>>(2, 0, 1, device));
    let e = rel_err(&got, &reference);
    eprintln!("1x1 stride 2: relative error of burn's input gradient on the GPU: {e:.2e}");
    if gpu_name().starts_with("wgpu") {
        assert!(
            e > 0.1,
            "burn's 1x1 stride-2 input gradient is right now ({e:e}): drop the workaround"
        );
    } else {
        eprintln!("(on {}: recorded, not asserted)", gpu_name());
    }
}

/// Set in the child process of `burn_moves_no_tensor_between_two_wgpu_devices`.
#[cfg(feature = "wgpu")]
const TWO_DEVICES_CHILD: &str = "CAPLAB_TWO_WGPU_DEVICES_CHILD";

/// burn 0.21 alone: why `experiment.devices` cannot be wired on wgpu (docs/gpu.md,
/// "Data-parallel training"). Two burn devices on one adapter (`WgpuDevice::Cpu` and
/// `WgpuDevice::DefaultDevice`, both lavapipe here) each compute, and a tensor crosses between
/// them through host memory; `Tensor::to_device` between them panics, because burn-cubecl's
/// `to_device` always takes cubecl's collective path (`to_client_tensor` → `comm_init`, `send`,
/// `recv`), whose default bodies cubecl-wgpu 0.10 does not override: they panic "not implemented" (`SERVER_COMM_ENABLED = false`).
/// burn-train's multi-device strategy moves the model to each device and every device's
/// gradients to the main one with `to_device` (`strategies/multi/epoch.rs`), so it cannot run on
/// two wgpu devices. The transfer runs in a child process (a panicking cubecl server must not take
/// the other tests' device with it). It asserts the panic as it is, so that the day burn moves
/// tensors between wgpu devices this test fails and the multi-device wiring can be tested here.
#[cfg(feature = "wgpu")]
#[test]
fn burn_moves_no_tensor_between_two_wgpu_devices() {
    use burn::backend::wgpu::{Wgpu, WgpuDevice};
    if !gpu_name().starts_with("wgpu") {
        eprintln!("(on {}: a wgpu-only reproduction, skipped)", gpu_name());
        return;
    }
    let (a, b) = (WgpuDevice::Cpu, WgpuDevice::DefaultDevice);
    if std::env::var_os(TWO_DEVICES_CHILD).is_some() {
        let values = [1.0f32, 2.0, 3.0];
        let x = Tensor::<Wgpu, 1>::from_floats(values, &a) * 2.0;
        let through_host = Tensor::<Wgpu, 1>::from_data(x.to_data(), &b) + 1.0;
        println!("through host: {:?}", through_host.to_data().to_vec::<f32>());
        let moved = x.to_device(&b) + 1.0;
        println!("to_device: {:?}", moved.to_data().to_vec::<f32>());
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "burn_moves_no_tensor_between_two_wgpu_devices",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(TWO_DEVICES_CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the child test process starts");
    let started = std::time::Instant::now();
    while child.try_wait().expect("waits on the child").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(180) {
            let _ = child.kill();
            panic!("the two-device transfer hung for 180 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("the child's output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let panics: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("panicked") || l.contains("not implemented"))
        .collect();
    eprintln!(
        "child stdout:\n{stdout}\nchild panics:\n{}",
        panics.join("\n")
    );
    assert!(
        stdout.contains("through host: Ok([3.0, 5.0, 7.0])"),
        "the second device computes on what the first one made, through host memory"
    );
    assert!(
        !out.status.success() && !stdout.contains("to_device: Ok"),
        "burn moved a tensor between two wgpu devices: wire experiment.devices on wgpu and \
         test it (docs/gpu.md)"
    );
    assert!(
        stderr.contains("not implemented"),
        "the transfer fails in cubecl's unimplemented collective path"
    );
}
