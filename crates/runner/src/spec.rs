//! The experiment spec: a typed serde tree, each section owned by the crate it configures.
//!
//! Layers, later ones winning: the TOML file, then `CAPLAB_SECTION__KEY=value` environment
//! variables, then `--set section.key=value` flags (values parsed as TOML, so `1e-3` works).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use caplab_data::config::DatasetConfig;
use caplab_data::vocab::VocabConfig;
use caplab_data::TokenizerConfig;
use caplab_models::search::SearchSpec;
use caplab_models::ModelSpec;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::schedule::LrSchedule;

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
    pub sweep: Option<crate::sweep::SweepSpec>,
}

/// Where a run executes: `"cpu"`, `"cuda"` (= `"cuda:0"`), `"cuda:N"` or `"auto"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The CPU backend.
    Cpu,
    /// The NVIDIA GPU with this CUDA ordinal (binary built with `--features cuda`).
    Cuda(usize),
    /// CUDA GPU 0 when built in and a GPU answers, else the CPU.
    #[default]
    Auto,
}

impl DeviceChoice {
    /// What `experiment.device` accepts, for error messages.
    pub const ALLOWED: &'static str = "\"cpu\", \"cuda\", \"cuda:N\" (N = 0, 1, …) or \"auto\"";

    /// Parses `cpu`, `cuda`, `cuda:N` or `auto`; the error names the key and the allowed values.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "key experiment.device must be {}, got {text:?}",
                Self::ALLOWED
            )
        };
        match text {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "auto" => Ok(Self::Auto),
            _ => {
                let index = text.strip_prefix("cuda:").ok_or_else(bad)?;
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                index.parse().map(Self::Cuda).map_err(|_| bad())
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

/// The float type of a run's tensors: `"f32"` (default), `"bf16"` or `"f16"` (CUDA only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats everywhere (the CPU backend's only choice).
    #[default]
    F32,
    /// bfloat16 tensors (burn's `Cuda<bf16>`).
    Bf16,
    /// IEEE half tensors (burn's `Cuda<f16>`).
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
    /// `cpu`, `cuda` (= `cuda:0`), `cuda:N` or `auto`.
    #[serde(default)]
    pub device: DeviceChoice,
    /// Float type of the tensors: `f32` (default; the only one on the CPU), `bf16` or `f16`.
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

impl ExperimentSpec {
    /// Checks `device`, `precision` and `devices` together (what serde cannot).
    pub fn validate_device(&self) -> Result<()> {
        if self.device == DeviceChoice::Cpu && !self.precision.is_f32() {
            bail!(
                "invalid spec: key experiment.precision = {:?} needs a CUDA device: the CPU \
                 backend trains in f32 (set experiment.precision = \"f32\", or \
                 experiment.device = \"cuda\")",
                self.precision.name()
            );
        }
        let Some(devices) = &self.devices else {
            return Ok(());
        };
        if devices.is_empty() {
            bail!(
                "invalid spec: key experiment.devices must list at least one CUDA ordinal, \
                 e.g. [0, 1] (leave it out to train on experiment.device alone)"
            );
        }
        if !matches!(self.device, DeviceChoice::Cuda(_)) {
            bail!(
                "invalid spec: key experiment.devices (data-parallel training) needs \
                 experiment.device = \"cuda\" or \"cuda:N\", got {:?}",
                self.device.to_string()
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for &d in devices {
            if !seen.insert(d) {
                bail!(
                    "invalid spec: key experiment.devices must list distinct CUDA ordinals, \
                     got {d} twice in {devices:?}"
                );
            }
        }
        if let DeviceChoice::Cuda(main) = self.device {
            if !devices.contains(&main) {
                bail!(
                    "invalid spec: key experiment.devices {devices:?} must include the main \
                     device experiment.device = \"{}\" (validation and the report run there)",
                    self.device
                );
            }
        }
        Ok(())
    }
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
    pub baseline: crate::scst::Baseline,
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
            baseline: crate::scst::Baseline::Greedy,
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

/// Loads a spec: the TOML file, then `CAPLAB_A__B` variables, then `--set a.b=v` overrides.
pub fn load(path: &Path, overrides: &[String]) -> Result<Spec> {
    if !path.is_file() {
        bail!(
            "spec file {} does not exist (see experiments/ for examples)",
            path.display()
        );
    }
    let figment = Figment::new().merge(Toml::file_exact(path)).merge(
        Env::prefixed("CAPLAB_")
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    );
    let origin = path.display().to_string();
    extract(with_sets(figment, overrides, &origin)?, &origin)
}

/// `--set key=value` items applied over `figment`, each checked to be a dotted key and a TOML
/// value. A set value **replaces** what is at its key: `--set 'eval.search={ method = "greedy" }'`
/// drops the file's `beam_size` instead of merging into it (figment merges tables key by key).
fn with_sets(figment: Figment, overrides: &[String], origin: &str) -> Result<Figment> {
    if overrides.is_empty() {
        return Ok(figment);
    }
    let mut sets = Vec::with_capacity(overrides.len());
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected key=value, e.g. train.epochs=2"))?;
        let key = key.trim();
        if key.is_empty() || !key.split('.').all(is_bare_key) {
            bail!("--set {item:?}: {key:?} is not a dotted key such as train.epochs");
        }
        // Parse the value as TOML first so the error names the flag.
        let value = format!("v = {}", value.trim())
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .with_context(|| {
                format!("--set {item:?}: the value is not valid TOML (quote strings: key=\"text\")")
            })?;
        sets.push((item, key, value));
    }
    let mut tree: toml::Value = figment.extract().map_err(|e| {
        let msg = e.to_string().replace("key \"default.", "key \"");
        anyhow::anyhow!("invalid spec {origin}: {msg}")
    })?;
    for (item, key, value) in sets {
        let mut node = &mut tree;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let toml::Value::Table(table) = node else {
                bail!(
                    "--set {item:?}: {} holds a value, not a table",
                    parts[..i].join(".")
                );
            };
            if i + 1 == parts.len() {
                table.insert(part.to_string(), value);
                break;
            }
            node = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
    }
    let text = toml::to_string(&tree).context("serialising the spec with --set values")?;
    Ok(Figment::new().merge(Toml::string(&text)))
}

/// The typed, validated spec from layered sources; errors name `origin`.
fn extract(figment: Figment, origin: &str) -> Result<Spec> {
    let spec: Spec = figment
        .extract()
        // figment prefixes key paths with its profile name ("default."): readers want the key.
        .map_err(|e| {
            let msg = e.to_string().replace("key \"default.", "key \"");
            anyhow::anyhow!("invalid spec {origin}: {msg}")
        })?;
    spec.validate()?;
    Ok(spec)
}

/// Loads a run's saved `spec.toml` exactly as written: no `CAPLAB_*` variable and no override
/// applies (what `caplab resume` and `caplab eval` use).
pub fn load_exact(path: &Path) -> Result<Spec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let spec: Spec = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid spec {}: {e}", path.display()))?;
    spec.validate()?;
    Ok(spec)
}

fn is_bare_key(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `a.b.c`, `v` → `[a.b]\nc = v`.
pub fn nest(key: &str, value: &str) -> String {
    match key.rsplit_once('.') {
        Some((table, leaf)) => format!("[{table}]\n{leaf} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

impl Spec {
    /// Checks value ranges that serde cannot express.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let init_from = t.scst.as_ref().is_some_and(|s| s.init_from.is_some());
        if init_from && t.epochs != 0 {
            bail!(
                "invalid spec: key train.epochs must be 0 with train.scst.init_from (the SCST \
                 epochs start from that run's best epoch), got {}",
                t.epochs
            );
        }
        if t.scst.is_some() && t.early_stopping_patience.is_some() {
            bail!(
                "invalid spec: keys train.early_stopping_patience and [train.scst] cannot be \
                 combined: the SCST epochs follow all train.epochs cross-entropy epochs"
            );
        }
        let checks: [(bool, &str, &str); 6] = [
            (
                t.epochs >= 1 || init_from,
                "train.epochs",
                "an integer ≥ 1 (0 only with train.scst.init_from)",
            ),
            (t.batch_size >= 1, "train.batch_size", "an integer ≥ 1"),
            (
                t.decoder_threads >= 1,
                "train.decoder_threads",
                "an integer ≥ 1",
            ),
            (
                t.captions_per_image >= 1,
                "train.captions_per_image",
                "an integer ≥ 1",
            ),
            (t.lr > 0.0 && t.lr.is_finite(), "train.lr", "a number > 0"),
            (
                self.eval.batch_size >= 1,
                "eval.batch_size",
                "an integer ≥ 1",
            ),
        ];
        for (ok, key, allowed) in checks {
            if !ok {
                bail!("invalid spec: key {key} must be {allowed}");
            }
        }
        if self.experiment.name.is_empty()
            || !self
                .experiment
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "invalid spec: key experiment.name must be letters, digits, '-', '_' or '.', got {:?}",
                self.experiment.name
            );
        }
        self.experiment.validate_device()?;
        // Sections owned by other crates validate themselves; their errors name the full key.
        self.eval
            .search
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid spec: {e}"))?;
        self.model
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid spec: {e}"))?;
        if let Some(clip) = self.train.grad_clip {
            let (key, v) = match clip {
                GradClip::GlobalNorm(v) => ("global_norm", v),
                GradClip::PerTensorNorm(v) => ("per_tensor_norm", v as f64),
                GradClip::Value(v) => ("value", v as f64),
                GradClip::Off => ("none", 1.0),
            };
            if !(v > 0.0 && v.is_finite()) {
                bail!("invalid spec: key train.grad_clip.{key} must be a number > 0, got {v}");
            }
        }
        match self.image_config().validate() {
            Err(caplab_data::DataError::Invalid { key, message }) => {
                let key = if key == "size" { "image_size" } else { &key };
                bail!("invalid spec: key preprocess.{key} {message}")
            }
            other => other?,
        }
        if let Err(caplab_data::DataError::Invalid { key, message }) = self
            .preprocess
            .tokenizer
            .check_vocab(&self.preprocess.vocab)
        {
            bail!("invalid spec: key preprocess.{key} {message}");
        }
        let ls = self.train.label_smoothing;
        if !(0.0..1.0).contains(&ls) {
            bail!("invalid spec: key train.label_smoothing must be in [0, 1), got {ls}");
        }
        if let LrSchedule::Step {
            every_epochs: 0, ..
        } = self.train.lr_schedule
        {
            bail!("invalid spec: key train.lr_schedule.every_epochs must be an integer ≥ 1");
        }
        if let Some(scst) = &self.train.scst {
            let checks: [(bool, &str, &str); 6] = [
                (scst.epochs >= 1, "epochs", "an integer ≥ 1"),
                (scst.lr > 0.0 && scst.lr.is_finite(), "lr", "a number > 0"),
                (
                    scst.samples_per_image >= 1,
                    "samples_per_image",
                    "an integer ≥ 1",
                ),
                (scst.max_len >= 1, "max_len", "an integer ≥ 1"),
                (
                    scst.temperature > 0.0 && scst.temperature.is_finite(),
                    "temperature",
                    "a number > 0",
                ),
                (
                    scst.reward.cider >= 0.0
                        && scst.reward.bleu4 >= 0.0
                        && scst.reward.cider + scst.reward.bleu4 > 0.0,
                    "reward",
                    "weights ≥ 0, not all 0, e.g. { cider = 1.0, bleu4 = 0.0 }",
                ),
            ];
            for (ok, key, allowed) in checks {
                if !ok {
                    bail!("invalid spec: key train.scst.{key} must be {allowed}");
                }
            }
            if scst.baseline == crate::scst::Baseline::MeanOfOthers && scst.samples_per_image < 2 {
                bail!(
                    "invalid spec: key train.scst.baseline = \"mean_of_others\" needs \
                     train.scst.samples_per_image ≥ 2, got {}",
                    scst.samples_per_image
                );
            }
        }
        if let Some(ss) = &self.train.scheduled_sampling {
            if !(0.0..=1.0).contains(&ss.max_prob) {
                bail!(
                    "invalid spec: key train.scheduled_sampling.max_prob must be in [0, 1], got {}",
                    ss.max_prob
                );
            }
            if self.model.decoder.is_attention() {
                bail!("invalid spec: key train.scheduled_sampling is supported with model.decoder, not model.attention");
            }
        }
        Ok(())
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

    /// This spec with `key=value` overrides applied (values parsed as TOML, as `--set` does;
    /// no environment variable applies), validated; errors name `origin`.
    pub fn with_overrides(&self, overrides: &[String], origin: &str) -> Result<Spec> {
        let figment = Figment::new().merge(Toml::string(&self.to_toml()?));
        extract(with_sets(figment, overrides, origin)?, origin)
    }

    /// The resolved spec as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("serialising the resolved spec")
    }

    /// The preprocessing of the encoder's input: ImageNet normalisation at [`Spec::image_size`].
    pub fn image_config(&self) -> caplab_data::image::ImageConfig {
        caplab_data::image::ImageConfig::imagenet(self.image_size())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_sampling_ramps_linearly_from_its_start_epoch() {
        let s = ScheduledSampling {
            start_epoch: 3,
            ramp_epochs: 4,
            max_prob: 0.4,
        };
        let p: Vec<f64> = (1..=8).map(|e| s.probability(e)).collect();
        let expected = [0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4];
        for (a, b) in p.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
    }

    const BASE: &str = "[experiment]\nname = \"t\"\n\n[data]\nkind = \"synth\"\nroot = \"shapes\"\n\n[model.encoder]\narch = \"resnet_tiny\"\n";

    /// Loads `BASE` plus `extra` with `--set` overrides; the error text on failure.
    fn load_with(extra: &str, sets: &[&str]) -> Result<Spec, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.toml");
        std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load(&path, &sets).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn out_of_range_values_name_the_full_key_and_the_allowed_range() {
        let cases = [
            (
                "model.decoder.num_layers=0",
                "key model.decoder.num_layers must be an integer ≥ 1, got 0",
            ),
            (
                "model.decoder.hidden_dim=0",
                "key model.decoder.hidden_dim must be an integer ≥ 1, got 0",
            ),
            (
                "model.decoder.dropout=1.5",
                "key model.decoder.dropout must be in [0, 1), got 1.5",
            ),
            (
                "preprocess.image_size=5000",
                "key preprocess.image_size must be in 16..=1024 pixels, got 5000",
            ),
            (
                "train.batch_size=0",
                "key train.batch_size must be an integer ≥ 1",
            ),
        ];
        for (set, expected) in cases {
            let err = load_with("", &[set]).unwrap_err();
            assert!(err.contains(expected), "--set {set}: {err}");
        }
        let greedy = "[eval.search]\nmethod = \"greedy\"\n";
        let err = load_with(greedy, &["eval.search.max_len=0"]).unwrap_err();
        assert!(
            err.contains("key eval.search.max_len must be an integer ≥ 1, got 0"),
            "{err}"
        );
        let err = load_with("[eval.search]\nmethod = \"beam\"\nbeam_size = 0\n", &[]).unwrap_err();
        assert!(
            err.contains("key eval.search.beam_size must be an integer ≥ 1, got 0"),
            "{err}"
        );
        let err = load_with("[model.attention]\nattention_dim = 0\n", &[]).unwrap_err();
        assert!(
            err.contains("key model.attention.attention_dim must be an integer ≥ 1, got 0"),
            "{err}"
        );
    }

    #[test]
    fn a_set_table_replaces_the_files_table_instead_of_merging_into_it() {
        let beam = "[eval.search]\nmethod = \"beam\"\nbeam_size = 3\nmax_len = 9\n[train]\ngrad_clip = { global_norm = 5.0 }\n";
        let spec = load_with(
            beam,
            &[
                "eval.search={ method = \"greedy\", max_len = 7 }",
                "train.grad_clip={ value = 1.0 }",
            ],
        )
        .unwrap();
        assert_eq!(spec.eval.search.max_len(), 7);
        assert!(
            matches!(spec.train.grad_clip, Some(GradClip::Value(v)) if v == 1.0),
            "{:?}",
            spec.train.grad_clip
        );
        let leaves = spec.leaves().unwrap();
        assert!(!leaves.contains_key("eval.search.beam_size"), "{leaves:?}");
        // A dotted key still sets one leaf and keeps its siblings.
        let spec = load_with(beam, &["eval.search.beam_size=5"]).unwrap();
        let leaves = spec.leaves().unwrap();
        assert_eq!(leaves["eval.search.beam_size"].as_integer(), Some(5));
        assert_eq!(leaves["eval.search.max_len"].as_integer(), Some(9));
        // Setting below a plain value is an error naming the flag.
        let off = load_with("", &["train.grad_clip=\"none\""]).unwrap();
        assert_eq!(off.train.grad_clip, Some(GradClip::Off));
        assert!(off.to_toml().unwrap().contains("grad_clip = \"none\""));
        let err = load_with("[train]\nlr = 1e-3\n", &["train.lr.x=1"]).unwrap_err();
        assert!(err.contains("train.lr holds a value"), "{err}");
    }

    #[test]
    fn decoder_and_attention_are_one_choice_and_serialise_only_their_keys() {
        let err = load_with("[model.decoder]\n\n[model.attention]\n", &[]).unwrap_err();
        assert!(
            err.contains("model.decoder and model.attention are alternatives"),
            "{err}"
        );
        let rnn = load_with("[model.decoder]\ncell = \"gru\"\n", &[]).unwrap();
        let leaves = rnn.leaves().unwrap();
        assert_eq!(leaves["model.decoder.cell"].as_str(), Some("gru"));
        assert!(!leaves.keys().any(|k| k.starts_with("model.attention")));
        let att = load_with("[model.attention]\nembed_dim = 24\n", &[]).unwrap();
        assert!(att.model.decoder.is_attention());
        let leaves = att.leaves().unwrap();
        assert_eq!(leaves["model.attention.embed_dim"].as_integer(), Some(24));
        assert!(
            !leaves.keys().any(|k| k.starts_with("model.decoder")),
            "{leaves:?}"
        );
        // The resolved spec.toml reads back to the same choice.
        let toml = att.to_toml().unwrap();
        let back: Spec = toml::from_str(&toml).unwrap();
        assert_eq!(back.model, att.model);
        // Neither key: the default RNN decoder.
        let default = load_with("", &[]).unwrap();
        assert_eq!(
            default.model.decoder,
            caplab_models::DecoderChoice::default()
        );
    }

    #[test]
    fn device_accepts_cpu_cuda_cuda_n_and_auto_and_names_the_key_otherwise() {
        let cases = [
            ("cpu", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:0", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
            ("auto", DeviceChoice::Auto),
        ];
        for (text, want) in cases {
            let set = format!("experiment.device=\"{text}\"");
            let spec = load_with("", &[&set]).unwrap();
            assert_eq!(spec.experiment.device, want, "{text}");
            // The resolved spec writes it back readably ("cuda:0" as "cuda", as before indices).
            let back: Spec = toml::from_str(&spec.to_toml().unwrap()).unwrap();
            assert_eq!(back.experiment.device, want);
        }
        assert_eq!(DeviceChoice::Cuda(0).to_string(), "cuda");
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
        for bad in [
            "gpu", "cuda:x", "cuda:", "cuda:-1", "cuda:1:2", "CUDA", "cuda0",
        ] {
            let set = format!("experiment.device=\"{bad}\"");
            let err = load_with("", &[&set]).unwrap_err();
            assert!(
                err.contains("key experiment.device must be"),
                "{bad}: {err}"
            );
            assert!(err.contains("\"cuda:N\""), "{bad}: {err}");
            assert!(err.contains(&format!("got {bad:?}")), "{bad}: {err}");
        }
        let err = load_with("", &["experiment.device=0"]).unwrap_err();
        assert!(err.contains("experiment.device"), "{err}");
    }

    #[test]
    fn precision_defaults_to_f32_and_is_refused_on_the_cpu_otherwise() {
        let spec = load_with("", &[]).unwrap();
        assert_eq!(spec.experiment.precision, Precision::F32);
        assert!(!spec.to_toml().unwrap().contains("precision"));
        let bf16 = load_with(
            "",
            &[
                "experiment.device=\"cuda\"",
                "experiment.precision=\"bf16\"",
            ],
        )
        .unwrap();
        assert_eq!(bf16.experiment.precision, Precision::Bf16);
        assert!(bf16.to_toml().unwrap().contains("precision = \"bf16\""));
        // "auto" may resolve to CUDA: checked when the device is resolved (backend.rs).
        let auto = load_with(
            "",
            &["experiment.device=\"auto\"", "experiment.precision=\"f16\""],
        );
        assert!(auto.is_ok(), "{auto:?}");
        let err = load_with(
            "",
            &["experiment.device=\"cpu\"", "experiment.precision=\"bf16\""],
        )
        .unwrap_err();
        assert!(err.contains("key experiment.precision = \"bf16\""), "{err}");
        assert!(err.contains("the CPU backend trains in f32"), "{err}");
        let err = load_with("", &["experiment.precision=\"fp8\""]).unwrap_err();
        assert!(err.contains("experiment.precision"), "{err}");
        assert!(err.contains("bf16"), "{err}");
    }

    #[test]
    fn devices_must_be_distinct_cuda_ordinals_including_the_main_device() {
        let cuda = "experiment.device=\"cuda:1\"";
        let spec = load_with("", &[cuda, "experiment.devices=[1, 0]"]).unwrap();
        assert_eq!(spec.experiment.devices, Some(vec![1, 0]));
        let back: Spec = toml::from_str(&spec.to_toml().unwrap()).unwrap();
        assert_eq!(back.experiment.devices, Some(vec![1, 0]));
        let cases: [(&[&str], &str); 5] = [
            (&[cuda, "experiment.devices=[]"], "key experiment.devices must list at least one"),
            (&[cuda, "experiment.devices=[1, 1]"], "must list distinct CUDA ordinals, got 1 twice"),
            (&[cuda, "experiment.devices=[0, 2]"], "must include the main device experiment.device = \"cuda:1\""),
            (&["experiment.device=\"cpu\"", "experiment.devices=[0]"], "key experiment.devices (data-parallel training) needs experiment.device = \"cuda\""),
            (&["experiment.devices=[0, 1]"], "got \"auto\""),
        ];
        for (sets, expected) in cases {
            let err = load_with("", sets).unwrap_err();
            assert!(err.contains(expected), "{sets:?}: {err}");
        }
        let err = load_with("", &[cuda, "experiment.devices=[-1]"]).unwrap_err();
        assert!(err.contains("experiment.devices"), "{err}");
    }
}
