//! `report.json` and `report.md` of a run (several runs are compared by [`crate::compare`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub mod html;

use crate::evaluate::SystemScores;
use crate::history::EpochRecord;

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

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into())
}

/// Metric columns in the order papers print them.
const COLUMNS: [&str; 7] = [
    "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr",
];

fn metric_value(m: &BTreeMap<String, f64>, col: &str) -> Option<(String, f64)> {
    if let Some(v) = m.get(col) {
        return Some((col.to_string(), *v));
    }
    // METEOR may be labelled METEOR(exact+stem) when the synonym resources are absent.
    m.iter()
        .find(|(k, _)| k.starts_with(col) && col == "METEOR")
        .map(|(k, v)| (k.clone(), *v))
}

fn metrics_table(rows: &[(String, &BTreeMap<String, f64>)]) -> String {
    let mut header: Vec<String> = vec!["system".into()];
    for col in COLUMNS {
        let label = rows
            .iter()
            .find_map(|(_, m)| metric_value(m, col).map(|(k, _)| k))
            .unwrap_or_else(|| col.to_string());
        header.push(label);
    }
    let mut s = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for (name, m) in rows {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| {
                metric_value(m, c)
                    .map(|(_, v)| format!("{v:.4}"))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        let _ = writeln!(s, "| {name} | {} |", cells.join(" | "));
    }
    s
}

impl Report {
    /// Markdown for humans.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# caplab report: {}\n", self.experiment);
        let _ = writeln!(s, "- run: `{}`", self.run_dir.display());
        let _ = writeln!(s, "- started: {}", self.started);
        let _ = writeln!(s, "- dataset: {}", self.dataset);
        let _ = writeln!(
            s,
            "- images: {} train / {} val / {} test; vocabulary {} words",
            self.split_sizes[0], self.split_sizes[1], self.split_sizes[2], self.vocab_size
        );
        let _ = writeln!(s, "- device: {}", self.device);
        let _ = writeln!(s, "- git commit: {}", self.git_commit);
        let _ = writeln!(s, "- seed: {}", self.seed);
        let _ = writeln!(s, "- encoder weights: {}", self.encoder_weights);
        if let Some(c) = &self.feature_cache {
            let _ = writeln!(
                s,
                "- frozen-encoder features: `{}` ({} images, {})",
                c.path.display(),
                c.images,
                if c.built {
                    "encoded by this run"
                } else {
                    "reused from the cache"
                }
            );
        }
        let _ = writeln!(
            s,
            "- wall time: {:.1} s (prepare {:.1} s, train {:.1} s, eval {:.1} s)",
            self.wall_time.total_s,
            self.wall_time.prepare_s,
            self.wall_time.train_s,
            self.wall_time.eval_s
        );
        let _ = writeln!(
            s,
            "- evaluated checkpoint: epoch {} (best validation {})\n",
            self.best_epoch,
            self.spec
                .get("train.select_metric")
                .map(|m| m.trim_matches('"').to_string())
                .unwrap_or_else(|| "CIDEr".into())
        );
        let _ = writeln!(s, "## Test metrics (pycocoevalcap definitions)\n");
        let rows: Vec<(String, &BTreeMap<String, f64>)> = self
            .test
            .iter()
            .map(|t| (t.name.clone(), &t.metrics))
            .collect();
        s.push_str(&metrics_table(&rows));
        if !self.metric_signature.is_empty() {
            let _ = writeln!(s, "\nMetric signature: `{}`", self.metric_signature);
        }
        if let Some(r) = self.cider_over_blind {
            let _ = writeln!(
                s,
                "\nThe model's CIDEr is {r:.2}× the best image-blind row: that is what looking at the image buys.\n"
            );
        }
        let _ = writeln!(s, "## Training\n");
        // An SCST run adds the phase and the mean reward (its train loss is the policy loss).
        let scst = self
            .epochs
            .iter()
            .any(|e| e.phase.as_deref() == Some("scst"));
        let _ = writeln!(
            s,
            "| epoch | lr | train loss | val loss | val BLEU-4 | val CIDEr | time (s) | CPU % |{}",
            if scst { " phase | train reward |" } else { "" }
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|{}",
            if scst { "---|---|" } else { "" }
        );
        for e in &self.epochs {
            let lr = e.lr.map_or_else(|| "–".to_string(), |v| format!("{v:.3e}"));
            let extra = if scst {
                format!(
                    " {} | {} |",
                    e.phase.as_deref().unwrap_or("xe"),
                    fmt_opt(e.train_reward)
                )
            } else {
                String::new()
            };
            let timing = self.epoch_times.iter().find(|t| t.epoch == e.epoch);
            let time = timing.map_or_else(|| "–".to_string(), |t| format!("{:.1}", t.wall_s));
            let cpu = timing
                .and_then(|t| t.cpu_percent)
                .map_or_else(|| "–".to_string(), |v| format!("{v:.0}"));
            let _ = writeln!(
                s,
                "| {} | {lr} | {} | {} | {} | {} | {time} | {cpu} |{extra}",
                e.epoch,
                fmt_opt(e.train_loss),
                fmt_opt(e.val_loss),
                fmt_opt(e.val_bleu4),
                fmt_opt(e.val_cider)
            );
        }
        let _ = writeln!(s, "\n## Spec key values\n");
        for (k, v) in &self.spec {
            let _ = writeln!(s, "- `{k}` = {v}");
        }
        let _ = writeln!(s, "\n## Sample captions (test split)\n");
        for smp in &self.samples {
            let _ = writeln!(s, "**{}** — model: *{}*", smp.image, smp.caption);
            if let Some(a) = &smp.attention {
                let _ = writeln!(s, "\n![attention of {}]({a})\n", smp.image);
            }
            for r in &smp.references {
                let _ = writeln!(s, "  - {r}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Decoding diagnostics\n");
        let _ = writeln!(
            s,
            "```json\n{}\n```",
            serde_json::to_string_pretty(&self.diagnostics).unwrap_or_default()
        );
        s
    }

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
