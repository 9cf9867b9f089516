//! What a report holds: `report.json`'s types, written by `caplab run` and `caplab eval` and read
//! back by `caplab compare`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::history::EpochRecord;

/// Scores of one system on the test split.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SystemScores {
    /// Row label.
    pub name: String,
    /// Corpus metrics, pycocoevalcap keys.
    pub metrics: BTreeMap<String, f64>,
    /// 95% bootstrap confidence interval of each metric over the test images (1000 resamples of
    /// the images, the corpus metric recomputed on each, CIDEr-D's document frequencies kept
    /// from the full test set; seeded, so reproducible). Absent in reports of older runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, caplab_metrics::bootstrap::Interval>,
}

/// One epoch's headline numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRow {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Learning rate of the epoch's last step.
    #[serde(default)]
    pub lr: Option<f64>,
    /// Token-weighted training loss.
    pub train_loss: Option<f64>,
    /// Token-weighted validation loss.
    pub val_loss: Option<f64>,
    /// Validation BLEU-4 of greedy captions.
    pub val_bleu4: Option<f64>,
    /// Validation CIDEr-D of greedy captions.
    pub val_cider: Option<f64>,
    /// Training phase: `xe` or `scst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Mean SCST reward of the epoch's samples (SCST epochs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_reward: Option<f64>,
}

/// Wall and CPU time of one epoch, kept apart from [`EpochRow`] because they differ between
/// two runs of one spec (a resumed run's epoch rows equal the uninterrupted run's).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochTime {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Wall-clock seconds (training and validation).
    pub wall_s: f64,
    /// Process CPU time over wall time, in percent (200: two cores busy).
    pub cpu_percent: Option<f64>,
}

/// The report's timings of the run history's epochs.
pub fn epoch_times(epochs: &[EpochRecord]) -> Vec<EpochTime> {
    epochs
        .iter()
        .map(|e| EpochTime {
            epoch: e.epoch,
            wall_s: e.wall_s,
            cpu_percent: e
                .cpu_s
                .filter(|_| e.wall_s > 0.0)
                .map(|c| 100.0 * c / e.wall_s),
        })
        .collect()
}

/// A test image with the model's caption and its references.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    /// Image file name.
    pub image: String,
    /// The model's caption.
    pub caption: String,
    /// Human (or synthetic) references.
    pub references: Vec<String>,
    /// Attention overlay image (relative to the run directory), for attention decoders.
    #[serde(default)]
    pub attention: Option<String>,
}

/// Wall-clock seconds of each phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WallTime {
    /// Loading, tokenising and decoding images.
    pub prepare_s: f64,
    /// Training, validation included.
    pub train_s: f64,
    /// Test captioning and scoring.
    pub eval_s: f64,
    /// The whole run.
    pub total_s: f64,
}

/// Everything a reader needs to judge a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Experiment name.
    pub experiment: String,
    /// Run directory.
    pub run_dir: PathBuf,
    /// Local time this process started the run (for a resumed run: the resume).
    pub started: String,
    /// Dataset name and root.
    pub dataset: String,
    /// Device and backend.
    pub device: String,
    /// Git commit of the code (`-dirty` with local changes).
    pub git_commit: String,
    /// Seed.
    pub seed: u64,
    /// Key values of the spec.
    pub spec: BTreeMap<String, String>,
    /// Encoder weights: a file, or random initialisation.
    pub encoder_weights: String,
    /// Vocabulary size, specials included.
    pub vocab_size: usize,
    /// Images in train / val / test.
    pub split_sizes: [usize; 3],
    /// Epoch whose checkpoint was evaluated (best validation CIDEr).
    pub best_epoch: usize,
    /// Per-epoch numbers.
    pub epochs: Vec<EpochRow>,
    /// Test metrics: the model first, then image-blind baselines.
    pub test: Vec<SystemScores>,
    /// How the metrics were computed (caplab-metrics' signature: tokenizer, METEOR mode and
    /// resources hash, CIDEr-D σ and df source, BLEU length rule, version).
    #[serde(default)]
    pub metric_signature: String,
    /// Model CIDEr divided by the best image-blind CIDEr.
    pub cider_over_blind: Option<f64>,
    /// A few test captions next to their references.
    pub samples: Vec<Sample>,
    /// Decoding diagnostics of the model's test captions.
    pub diagnostics: serde_json::Value,
    /// The feature cache a frozen encoder read from.
    #[serde(default)]
    pub feature_cache: Option<FeatureCacheInfo>,
    /// Images decoded by this run's training and evaluation pipeline (0 with a reused cache).
    #[serde(default)]
    pub images_decoded: usize,
    /// Wall time per phase.
    pub wall_time: WallTime,
    /// Wall and CPU time of each epoch.
    #[serde(default)]
    pub epoch_times: Vec<EpochTime>,
}

/// Which feature-cache file a run used and whether it had to build it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeatureCacheInfo {
    /// The cache file.
    pub path: PathBuf,
    /// Whether this run encoded the images (false: reused).
    pub built: bool,
    /// Images in the cache.
    pub images: usize,
}

/// The report's rows of the run history's epochs.
pub fn epoch_rows(epochs: &[EpochRecord]) -> Vec<EpochRow> {
    epochs
        .iter()
        .map(|e| EpochRow {
            epoch: e.epoch,
            lr: Some(e.lr),
            train_loss: e.train.get("Loss").copied(),
            val_loss: e.valid.get("Loss").copied(),
            val_bleu4: e.valid.get("BLEU-4").copied(),
            val_cider: e.valid.get("CIDEr").copied(),
            phase: Some(e.phase.clone()),
            train_reward: e.train.get("Reward").copied(),
        })
        .collect()
}

impl Report {
    /// Reads `report.json` from a run directory or a file path.
    pub fn load(path: &Path) -> Result<Report> {
        let file = if path.is_dir() {
            path.join("report.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a caplab report.json", file.display()))
    }
}

/// Metric columns in the order papers print them.
pub const COLUMNS: [&str; 7] = [
    "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr",
];
