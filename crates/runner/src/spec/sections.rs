//! The spec's sections: the typed serde tree of an experiment, from `[experiment]` to
//! `[sweep]`, with their defaults. Sections owned by other crates (`data`, `model`, the
//! tokenizer, vocabulary and search settings) are their types, embedded here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use caplab_data::config::DatasetConfig;
use caplab_data::vocab::VocabConfig;
use caplab_data::TokenizerConfig;
use caplab_models::search::SearchSpec;
use caplab_models::ModelSpec;
use serde::{Deserialize, Serialize};

/// A whole experiment: what to train, on what, how, and how to evaluate it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Name, seed, device and output location.
    pub experiment: ExperimentSpec,
    /// The dataset (owned by `caplab-data`).
    pub data: DatasetConfig,
    /// Image preprocessing and vocabulary.
    #[serde(default)]
    pub preprocess: PreprocessSpec,
    /// Encoder and decoder (owned by `caplab-models`).
    pub model: ModelSpec,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainSpec,
    /// Decoding and scoring of the test split.
    #[serde(default)]
    pub eval: EvalSpec,
    /// A grid of trials over spec keys (`caplab sweep`); absent for a single run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSpec>,
}

/// Where a run executes: `"cpu"`, `"cuda"` (= `"cuda:0"`), `"cuda:N"`, `"wgpu"`, `"wgpu:N"`,
/// `"wgpu:cpu"` or `"auto"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The CPU backend.
    Cpu,
    /// The NVIDIA GPU with this CUDA ordinal (binary built with `--features cuda`).
    Cuda(usize),
    /// A GPU through burn's wgpu backend (binary built with `--features vulkan`, `metal` or
    /// `wgpu`).
    Wgpu(WgpuChoice),
    /// CUDA GPU 0 when built in and a GPU answers, else the first wgpu GPU adapter (never a
    /// CPU-type one such as lavapipe), else the CPU.
    #[default]
    Auto,
}

/// Which wgpu adapter `experiment.device = "wgpu…"` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgpuChoice {
    /// `"wgpu"`: the first GPU adapter (discrete, then integrated, then virtual); never a
    /// CPU-type adapter.
    Gpu,
    /// `"wgpu:N"`: adapter N as `caplab devices` lists it, whatever its type.
    Index(usize),
    /// `"wgpu:cpu"`: the first CPU-type adapter (a software Vulkan such as Mesa's lavapipe).
    CpuAdapter,
}

impl DeviceChoice {
    /// What `experiment.device` accepts, for error messages.
    pub const ALLOWED: &'static str = "\"cpu\", \"cuda\", \"cuda:N\" (N = 0, 1, …), \"wgpu\", \
         \"wgpu:N\" (an adapter `caplab devices` lists), \"wgpu:cpu\" or \"auto\"";

    /// Parses `cpu`, `cuda`, `cuda:N`, `wgpu`, `wgpu:N`, `wgpu:cpu` or `auto`; the error names
    /// the key and the allowed values.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "key experiment.device must be {}, got {text:?}",
                Self::ALLOWED
            )
        };
        let index = |digits: &str| -> Result<usize, String> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            digits.parse().map_err(|_| bad())
        };
        match text {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "wgpu" => Ok(Self::Wgpu(WgpuChoice::Gpu)),
            "wgpu:cpu" => Ok(Self::Wgpu(WgpuChoice::CpuAdapter)),
            "auto" => Ok(Self::Auto),
            _ => {
                if let Some(n) = text.strip_prefix("cuda:") {
                    index(n).map(Self::Cuda)
                } else if let Some(n) = text.strip_prefix("wgpu:") {
                    index(n).map(|n| Self::Wgpu(WgpuChoice::Index(n)))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            // "cuda" stays "cuda" so that resolved specs (and their hashes) written before
            // device indices existed read and write back unchanged.
            Self::Cuda(0) => f.write_str("cuda"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Wgpu(WgpuChoice::Gpu) => f.write_str("wgpu"),
            Self::Wgpu(WgpuChoice::Index(n)) => write!(f, "wgpu:{n}"),
            Self::Wgpu(WgpuChoice::CpuAdapter) => f.write_str("wgpu:cpu"),
            Self::Auto => f.write_str("auto"),
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The float type of a run's tensors: `"f32"` (default), `"bf16"` (CUDA only) or `"f16"` (CUDA,
/// and wgpu adapters with shader f16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats everywhere (the CPU backend's only choice).
    #[default]
    F32,
    /// bfloat16 tensors (burn's `Cuda<bf16>`).
    Bf16,
    /// IEEE half tensors (burn's `Cuda<f16>` or `Wgpu<f16>`).
    F16,
}

impl Precision {
    /// Whether this is the default `f32` (not written to resolved specs, so older hashes hold).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// Parses `f32`, `bf16` or `f16` (command-line flags).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            _ => Err(format!("expected f32, bf16 or f16, got {text:?}")),
        }
    }

    /// The spec's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
}

/// The `[experiment]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Name of the experiment; runs go to `<runs_dir>/<name>/<timestamp>-<id>/`.
    pub name: String,
    /// Seed of weights, shuffling and dropout: the same spec and seed give the same numbers on CPU.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `cpu`, `cuda` (= `cuda:0`), `cuda:N`, `wgpu`, `wgpu:N`, `wgpu:cpu` or `auto`.
    #[serde(default)]
    pub device: DeviceChoice,
    /// Float type of the tensors: `f32` (default; the only one on the CPU), `bf16` (CUDA) or
    /// `f16` (CUDA; wgpu adapters with shader f16).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// CUDA ordinals for data-parallel training (e.g. `[0, 1]`); absent: the one `device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<usize>>,
    /// Root of run directories.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// Run the experiment once per seed (`caplab run` and `caplab sweep` make one trial each,
    /// grouped in a sweep directory); empty: the single `seed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
}

/// The `[preprocess]` section: image size comes from the encoder, captions from here.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessSpec {
    /// Encoder input size in pixels; 0 takes the architecture's own (224, 299, 64 …).
    pub image_size: u32,
    /// Tokenizer: `"words"` (caplab's) or `{ wordpiece = "tokenizer.json" }` (a Hugging Face
    /// WordPiece file; the vocabulary is then the tokenizer's own).
    pub tokenizer: TokenizerConfig,
    /// Vocabulary built from the training captions (word tokenizer only).
    pub vocab: VocabConfig,
    /// Training captions longer than this many words are cut.
    pub max_caption_len: usize,
    /// Decode all images into memory once when they fit in this many MiB (0: never).
    pub preload_max_mib: usize,
    /// Largest image, in pixels (width × height, from the file's header), that is decoded;
    /// larger ones are refused before decoding (a dataset check error, a skipped file in
    /// `caplab caption`). At least 1; default 100 megapixels.
    pub max_image_pixels: u64,
    /// Decode a large JPEG at 1/2, 1/4 or 1/8 scale (DCT scaling) when both sides stay at least
    /// the encoder input: faster and smaller decodes, other pixels than PIL/torchvision's
    /// full-size decode. Default off; written to `spec.toml` only when on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub jpeg_draft: bool,
    /// Directory of the feature cache used when `model.encoder.trainable = "frozen"`.
    pub feature_cache: PathBuf,
}

impl Default for PreprocessSpec {
    fn default() -> Self {
        Self {
            image_size: 0,
            tokenizer: TokenizerConfig::default(),
            vocab: VocabConfig::default(),
            max_caption_len: 30,
            preload_max_mib: 2048,
            max_image_pixels: caplab_data::image::DEFAULT_MAX_PIXELS,
            jpeg_draft: false,
            feature_cache: PathBuf::from("cache/features"),
        }
    }
}

/// Gradient clipping.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum GradClip {
    /// PyTorch's `clip_grad_norm_`: when the L2 norm of all gradients taken together exceeds
    /// this, scale every gradient by `max / (norm + 1e-6)`.
    GlobalNorm(f64),
    /// burn's `GradientClipping::Norm`: rescale each parameter's gradient whose own L2 norm
    /// exceeds this, independently of the others.
    PerTensorNorm(f32),
    /// Clamp every gradient element to ±this.
    Value(f32),
    /// No clipping: `grad_clip = "none"`.
    #[serde(rename = "none")]
    Off,
}

/// The `[train]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    /// Number of epochs (an epoch visits every training image once).
    pub epochs: usize,
    /// Images per batch; each brings `captions_per_image` captions.
    pub batch_size: usize,
    /// Captions of each image used per step (1–5 for Flickr8k-style data).
    pub captions_per_image: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam weight decay (L2), 0 for none.
    pub weight_decay: f64,
    /// Gradient clipping: `{ global_norm = 5.0 }` (PyTorch's `clip_grad_norm_`, the default),
    /// `{ per_tensor_norm = 5.0 }` (burn's), `{ value = 1.0 }`, or `"none"`.
    pub grad_clip: Option<GradClip>,
    /// Background threads preparing batches.
    pub num_workers: usize,
    /// Threads the decoder's cross-entropy forward and backward are split over, each on an equal
    /// share of the batch's images (the encoder still sees the whole batch). Up to float
    /// summation order the step is the same for any value; the numbers depend on this value,
    /// not on the machine's cores. Applies on the CPU to the RNN decoder without dropout,
    /// outside scheduled sampling and SCST; otherwise the step runs on one thread.
    pub decoder_threads: usize,
    /// Learning-rate schedule, e.g. `{ kind = "step", every_epochs = 4, gamma = 0.5 }`.
    pub lr_schedule: LrSchedule,
    /// Label smoothing ε of the cross-entropy (0 for none).
    pub label_smoothing: f64,
    /// Validation metric that selects the evaluated checkpoint: `CIDEr`, `BLEU-4` or `Loss`.
    pub select_metric: SelectMetric,
    /// Stop when `select_metric` has not improved for this many epochs (absent: never).
    pub early_stopping_patience: Option<usize>,
    /// Scheduled sampling, e.g. `{ start_epoch = 3, ramp_epochs = 5, max_prob = 0.25 }`.
    pub scheduled_sampling: Option<ScheduledSampling>,
    /// Self-critical sequence training after the `epochs` cross-entropy epochs (absent: none).
    pub scst: Option<ScstSpec>,
}

impl TrainSpec {
    /// All epochs of the run: cross-entropy, then SCST.
    pub fn total_epochs(&self) -> usize {
        self.epochs + self.scst.as_ref().map_or(0, |s| s.epochs)
    }

    /// The phase 1-based `epoch` belongs to: `"xe"` or `"scst"`.
    pub fn phase(&self, epoch: usize) -> &'static str {
        if epoch > self.epochs && self.scst.is_some() {
            "scst"
        } else {
            "xe"
        }
    }
}

/// `[train.scst]`: self-critical sequence training (Rennie et al. 2017) on a CIDEr-D reward,
/// run as epochs `train.epochs + 1 ..= train.epochs + scst.epochs` of the same run. It starts
/// from the weights and Adam moments of the best cross-entropy epoch (by `train.select_metric`),
/// or, with `init_from` and `train.epochs = 0`, from another finished run's best-epoch weights
/// with a fresh Adam.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScstSpec {
    /// SCST epochs after the cross-entropy ones.
    pub epochs: usize,
    /// Adam learning rate during SCST (constant).
    pub lr: f64,
    /// Captions sampled per image (k).
    pub samples_per_image: usize,
    /// `"greedy"` (the greedy caption's reward) or `"mean_of_others"` (the other samples' mean).
    pub baseline: ScstBaseline,
    /// Reward weights: `{ cider = 1.0, bleu4 = 0.0 }` (CIDEr-D with training-set document
    /// frequencies; sentence BLEU-4).
    pub reward: ScstReward,
    /// Whether `<eos>` counts as a word of the sampled captions and references in the reward.
    pub include_eos_in_reward: bool,
    /// Maximum words of a sampled caption.
    pub max_len: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// A finished run (`runs/<experiment>/<run>`) whose best epoch the SCST epochs start from,
    /// instead of this run's own cross-entropy epochs (`train.epochs` must then be 0). Its
    /// vocabulary is used, and its `model` and `preprocess` sections must equal this spec's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl Default for ScstSpec {
    fn default() -> Self {
        Self {
            epochs: 5,
            lr: 5e-5,
            samples_per_image: 5,
            baseline: ScstBaseline::Greedy,
            reward: ScstReward::default(),
            include_eos_in_reward: true,
            max_len: 16,
            temperature: 1.0,
            init_from: None,
        }
    }
}

/// Weights of the SCST reward's terms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScstReward {
    /// Weight of CIDEr-D.
    pub cider: f64,
    /// Weight of sentence BLEU-4.
    pub bleu4: f64,
}

impl Default for ScstReward {
    fn default() -> Self {
        Self {
            cider: 1.0,
            bleu4: 0.0,
        }
    }
}

/// Scheduled sampling (Bengio et al. 2015) with a linear ramp of the sampling probability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledSampling {
    /// First epoch (1-based) that feeds the model's own predictions.
    #[serde(default = "one")]
    pub start_epoch: usize,
    /// Epochs over which the probability rises linearly to `max_prob`.
    #[serde(default = "five")]
    pub ramp_epochs: usize,
    /// Final probability of feeding a prediction instead of the ground-truth word.
    pub max_prob: f64,
}

fn one() -> usize {
    1
}

fn five() -> usize {
    5
}

impl ScheduledSampling {
    /// Sampling probability during 1-based `epoch`.
    pub fn probability(&self, epoch: usize) -> f64 {
        if epoch < self.start_epoch {
            return 0.0;
        }
        let done = (epoch - self.start_epoch + 1) as f64 / self.ramp_epochs.max(1) as f64;
        self.max_prob * done.min(1.0)
    }
}

/// A validation metric used to pick the best epoch and to stop early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SelectMetric {
    /// CIDEr-D of greedy captions (higher is better), as the strongest codebases select.
    #[default]
    #[serde(rename = "CIDEr")]
    Cider,
    /// BLEU-4 of greedy captions (higher is better).
    #[serde(rename = "BLEU-4")]
    Bleu4,
    /// Teacher-forced validation loss (lower is better).
    #[serde(rename = "Loss")]
    Loss,
}

impl SelectMetric {
    /// The metric's name in burn-train's logs.
    pub fn name(self) -> &'static str {
        match self {
            SelectMetric::Cider => "CIDEr",
            SelectMetric::Bleu4 => "BLEU-4",
            SelectMetric::Loss => "Loss",
        }
    }
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            captions_per_image: 5,
            lr: 1e-3,
            weight_decay: 0.0,
            grad_clip: Some(GradClip::GlobalNorm(5.0)),
            num_workers: 1,
            decoder_threads: 2,
            lr_schedule: LrSchedule::Constant,
            label_smoothing: 0.0,
            select_metric: SelectMetric::Cider,
            early_stopping_patience: None,
            scheduled_sampling: None,
            scst: None,
        }
    }
}

/// The `[eval]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSpec {
    /// Test-split decoding: `{ method = "greedy" | "beam" | "sample", … }`; validation decodes
    /// greedily with the same `max_len`.
    pub search: SearchSpec,
    /// Images per decoding batch.
    pub batch_size: usize,
    /// How many test images the report shows next to their references.
    pub samples: usize,
    /// METEOR resources (a METEOR 1.5 directory); unset: `CAPLAB_METEOR_DIR`, else exact+stem METEOR.
    pub meteor_dir: Option<PathBuf>,
}

impl EvalSpec {
    /// The METEOR this run computes: full METEOR 1.5 with the resources in `meteor_dir` (else
    /// `$CAPLAB_METEOR_DIR`), else exact+stem.
    pub fn meteor_mode(&self) -> caplab_metrics::MeteorMode {
        caplab_metrics::MeteorMode::best_available(self.meteor_dir.clone())
    }
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self {
            search: SearchSpec::default(),
            batch_size: 64,
            samples: 8,
            meteor_dir: None,
        }
    }
}

fn default_seed() -> u64 {
    42
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

impl Spec {
    /// The spec flattened to `section.key = value` strings (the report's spec table).
    pub fn key_values(&self) -> Result<BTreeMap<String, String>> {
        Ok(self
            .leaves()?
            .into_iter()
            .map(|(key, value)| (key, value.to_string()))
            .collect())
    }

    /// The resolved spec's leaves (every non-table value) by dotted key, sorted.
    pub fn leaves(&self) -> Result<std::collections::BTreeMap<String, toml::Value>> {
        fn walk(
            prefix: &str,
            value: toml::Value,
            out: &mut std::collections::BTreeMap<String, toml::Value>,
        ) {
            match value {
                toml::Value::Table(table) => {
                    for (k, v) in table {
                        let key = if prefix.is_empty() {
                            k
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, v, out);
                    }
                }
                leaf => {
                    out.insert(prefix.to_string(), leaf);
                }
            }
        }
        let value = toml::Value::try_from(self).context("flattening the spec")?;
        let mut out = std::collections::BTreeMap::new();
        walk("", value, &mut out);
        Ok(out)
    }

    /// The preprocessing of the encoder's input at [`Spec::image_size`]: ImageNet normalisation,
    /// or CLIP's bicubic resize, centre crop and mean/std for a CLIP tower (`clip_*`),
    /// with the pixel budget `preprocess.max_image_pixels` and `preprocess.jpeg_draft`.
    pub fn image_config(&self) -> caplab_data::image::ImageConfig {
        caplab_data::image::ImageConfig {
            max_pixels: self.preprocess.max_image_pixels,
            jpeg_draft: self.preprocess.jpeg_draft,
            ..if self.model.encoder.arch.is_clip() {
                caplab_data::image::ImageConfig::clip(self.image_size())
            } else {
                caplab_data::image::ImageConfig::imagenet(self.image_size())
            }
        }
    }

    /// Encoder input size in pixels.
    pub fn image_size(&self) -> u32 {
        if self.preprocess.image_size > 0 {
            self.preprocess.image_size
        } else {
            self.model.encoder.arch.input_size()
        }
    }
}

/// How the learning rate moves during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs (Show and Tell's step decay).
    Step {
        /// Epochs between decays.
        every_epochs: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiply by `factor` whenever the validation `train.select_metric` has not improved for
    /// `patience` epochs (reduce-on-plateau), never below `min_lr`.
    Plateau {
        /// Decay factor.
        #[serde(default = "half")]
        factor: f64,
        /// Epochs without improvement before a decay.
        #[serde(default = "two")]
        patience: usize,
        /// Lowest rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// Linear warm-up from 0, then cosine decay to `min_lr` at the last step.
    Cosine {
        /// Warm-up length in epochs (may be fractional).
        #[serde(default)]
        warmup_epochs: f64,
        /// Final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// Noam (Vaswani et al. 2017): linear warm-up to `train.lr` over `warmup_steps` batches,
    /// then decay with the inverse square root of the step, `lr · min(s / w, √(w / s))` at
    /// 1-based step `s`. The paper's `d_model^-0.5 · min(s^-0.5, s · w^-1.5)` (times a factor)
    /// is this with `train.lr = factor · (d_model · w)^-0.5`.
    Noam {
        /// Warm-up length in batches (≥ 1).
        warmup_steps: usize,
    },
}

fn half() -> f64 {
    0.5
}

fn two() -> usize {
    2
}

/// What the reward of a sample is compared against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScstBaseline {
    /// The reward of the image's greedy caption (Rennie et al. 2017).
    Greedy,
    /// The mean reward of the image's other samples (Luo 2020); needs `samples_per_image ≥ 2`.
    MeanOfOthers,
}

/// Which checkpoint of a run to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointChoice {
    /// The epoch the run itself evaluated (best validation `train.select_metric`).
    Best,
    /// The last trained epoch.
    Last,
    /// A given epoch (its checkpoint must still be on disk).
    Epoch(usize),
}

impl std::str::FromStr for CheckpointChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "best" => Ok(Self::Best),
            "last" => Ok(Self::Last),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .map(Self::Epoch)
                .ok_or_else(|| format!("{s:?}: expected best, last or an epoch number ≥ 1")),
        }
    }
}

/// The split an evaluation decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    /// The test split (what the run's report scores).
    Test,
    /// The validation split.
    Val,
}

/// The `[sweep]` section: which spec keys vary across trials.
///
/// ```toml
/// [sweep.grid]                       # every combination
/// "train.lr" = [1e-3, 2e-3]
/// "model.decoder.cell" = ["lstm", "gru"]
/// [sweep.zip]                        # taken together, position by position
/// "model.decoder.hidden_dim" = [256, 512]
/// "model.decoder.embed_dim" = [128, 256]
/// ```
///
/// Trials = zip positions × grid combinations × `experiment.seeds`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Keys whose values are crossed with each other.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Keys whose lists (all of one length) are taken position by position, crossed with the grid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zip: BTreeMap<String, Vec<toml::Value>>,
}
