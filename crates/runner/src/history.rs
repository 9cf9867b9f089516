//! The run history: one JSON line per finished epoch in `history.jsonl`, the single source of
//! every per-epoch number of a run.
//!
//! An epoch's line is appended (the whole file rewritten atomically) as soon as its validation
//! is scored, before its checkpoint is saved. The report's epoch table, best-epoch selection,
//! early stopping, the plateau learning-rate schedule and TensorBoard's step offset all read it,
//! and `caplab resume` reloads it, cut back to the epoch of the checkpoint it resumes from, so a
//! resumed run sees exactly the history an uninterrupted run would have had.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::spec::{SelectMetric, Spec};

/// File name of the history inside a run directory.
pub const FILE: &str = "history.jsonl";

/// Everything recorded about one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Training stage: `xe` (cross-entropy with teacher forcing).
    pub phase: String,
    /// Optimiser steps taken when the epoch ended (all epochs so far).
    pub step: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Training values by metric (`Loss`: token-weighted cross-entropy).
    #[serde(deserialize_with = "nan_for_null")]
    pub train: BTreeMap<String, f64>,
    /// Validation values by metric (`Loss`, `BLEU-4`, `CIDEr` of greedy captions).
    #[serde(deserialize_with = "nan_for_null")]
    pub valid: BTreeMap<String, f64>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub wall_s: f64,
    /// CPU seconds the process used in the epoch, all threads (`cpu_s / wall_s`: busy cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

/// The epochs of a run, backed by `history.jsonl`.
#[derive(Clone, Debug)]
pub struct History {
    path: PathBuf,
    epochs: Vec<EpochRecord>,
}

impl History {
    /// An empty history for a new run in `run_dir` (nothing is written until an epoch ends).
    pub fn new(run_dir: &Path) -> Self {
        Self {
            path: run_dir.join(FILE),
            epochs: Vec::new(),
        }
    }

    /// The history of `run_dir`; empty when the file does not exist. A malformed line is an
    /// error naming the file and the line.
    pub fn load(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(FILE);
        let mut epochs: Vec<EpochRecord> = Vec::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let record: EpochRecord = serde_json::from_str(line).with_context(|| {
                    format!("{}:{}: not an epoch record", path.display(), i + 1)
                })?;
                if record.epoch != epochs.len() + 1 {
                    bail!(
                        "{}:{}: epoch {} follows epoch {}",
                        path.display(),
                        i + 1,
                        record.epoch,
                        epochs.len()
                    );
                }
                epochs.push(record);
            }
        }
        Ok(Self { path, epochs })
    }

    /// Every recorded epoch, in order.
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.epochs
    }

    /// The last recorded epoch (0 when none).
    pub fn last_epoch(&self) -> usize {
        self.epochs.len()
    }

    /// The record of `epoch`, if recorded.
    pub fn get(&self, epoch: usize) -> Option<&EpochRecord> {
        epoch.checked_sub(1).and_then(|i| self.epochs.get(i))
    }

    /// Appends the next epoch and rewrites the file atomically.
    pub fn append(&mut self, record: EpochRecord) -> Result<()> {
        if record.epoch != self.epochs.len() + 1 {
            bail!(
                "history: epoch {} cannot follow epoch {}",
                record.epoch,
                self.epochs.len()
            );
        }
        self.epochs.push(record);
        self.save()
    }

    /// Forgets the epochs after `epoch` (those of an interrupted attempt) and rewrites the file.
    pub fn truncate(&mut self, epoch: usize) -> Result<()> {
        if self.epochs.len() > epoch {
            self.epochs.truncate(epoch);
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let mut text = String::new();
        for e in &self.epochs {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())
    }

    /// The validation values of `metric`, by epoch, up to and including `until`.
    pub fn valid_values(&self, metric: &str, until: usize) -> Vec<f64> {
        self.epochs
            .iter()
            .take(until)
            .filter_map(|e| e.valid.get(metric).copied())
            .collect()
    }

    /// The epoch with the best finite validation `metric` (the earliest on ties) among the
    /// epochs of the last epoch's phase: after SCST epochs, the best SCST epoch.
    pub fn best_epoch(&self, metric: &str, lower_is_better: bool) -> Option<usize> {
        let phase = self.epochs.last()?.phase.clone();
        self.best_in_phase(metric, lower_is_better, &phase)
    }

    /// The best epoch (as [`History::best_epoch`]) among the epochs of `phase` (`xe`, `scst`).
    pub fn best_in_phase(&self, metric: &str, lower_is_better: bool, phase: &str) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for e in self.epochs.iter().filter(|e| e.phase == phase) {
            let Some(&v) = e.valid.get(metric) else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => improves(v, b, lower_is_better),
            };
            if better {
                best = Some((e.epoch, v));
            }
        }
        best.map(|(epoch, _)| epoch)
    }

    /// Whether training stops after the last recorded epoch: `patience` epochs have passed
    /// since the best validation `metric`.
    pub fn should_stop(&self, metric: &str, lower_is_better: bool, patience: usize) -> bool {
        match self.best_epoch(metric, lower_is_better) {
            Some(best) => self.last_epoch() - best >= patience.max(1),
            None => false,
        }
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The validation metric that selects the best epoch, with its direction.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Metric name in the history's `valid` values.
    pub metric: String,
    /// Whether lower is better (loss).
    pub lower_is_better: bool,
}

impl Selection {
    /// The selection of `spec`'s `train.select_metric`.
    pub fn of(spec: &Spec) -> Selection {
        let select = spec.train.select_metric;
        Selection {
            metric: select.name().to_string(),
            lower_is_better: select == SelectMetric::Loss,
        }
    }
}

/// Whether `value` strictly improves on `best`.
pub fn improves(value: f64, best: f64, lower_is_better: bool) -> bool {
    if lower_is_better {
        value < best
    } else {
        value > best
    }
}

/// Reads a metric map in which JSON writes a NaN (an SCST epoch's `GreedyReward` under the
/// `mean_of_others` baseline, a diverged loss) as `null`: back as NaN.
fn nan_for_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let values: BTreeMap<String, Option<f64>> = serde::Deserialize::deserialize(d)?;
    Ok(values
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

#[cfg(test)]
mod tests {
    /// A NaN written as `null` (SCST's greedy reward under `mean_of_others`) reads back as NaN,
    /// so such a run's history loads (to resume it, to compare it).
    #[test]
    fn a_nan_metric_written_as_null_reads_back_as_nan() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let line = r#"{"epoch":1,"phase":"scst","step":50,"lr":0.0003,"train":{"GreedyReward":null,"Reward":0.8},"valid":{"CIDEr":1.0},"wall_s":1.0}"#;
        std::fs::write(tmp.path().join(super::FILE), format!("{line}\n")).expect("write");
        let history = super::History::load(tmp.path()).expect("a history with a null");
        let train = &history.epochs()[0].train;
        assert!(train["GreedyReward"].is_nan());
        assert_eq!(train["Reward"], 0.8);
    }

    use super::*;

    fn record(epoch: usize, cider: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            phase: "xe".into(),
            step: epoch * 10,
            lr: 1e-3,
            train: BTreeMap::from([("Loss".to_string(), 3.0 / epoch as f64)]),
            valid: BTreeMap::from([("CIDEr".to_string(), cider)]),
            wall_s: 1.5,
            cpu_s: None,
        }
    }

    #[test]
    fn appended_epochs_reload_identically_and_truncate_drops_later_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut h = History::new(tmp.path());
        for (e, c) in [(1, 0.1), (2, 0.3), (3, 0.2)] {
            h.append(record(e, c)).expect("append");
        }
        let again = History::load(tmp.path()).expect("load");
        assert_eq!(again.epochs(), h.epochs());
        let mut again = again;
        again.truncate(2).expect("truncate");
        let third = History::load(tmp.path()).expect("load");
        assert_eq!(third.epochs(), &h.epochs()[..2]);
        assert!(
            h.append(record(5, 0.0)).is_err(),
            "epochs follow each other"
        );
    }

    #[test]
    fn best_epoch_and_early_stop_follow_the_metric_direction() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut h = History::new(tmp.path());
        for (e, c) in [(1, 0.1), (2, 0.3), (3, 0.3), (4, 0.2)] {
            h.append(record(e, c)).expect("append");
        }
        assert_eq!(h.best_epoch("CIDEr", false), Some(2), "earliest of a tie");
        assert_eq!(h.best_epoch("CIDEr", true), Some(1));
        assert!(h.should_stop("CIDEr", false, 2));
        assert!(!h.should_stop("CIDEr", false, 3));
        assert_eq!(h.valid_values("CIDEr", 3), vec![0.1, 0.3, 0.3]);
    }

    #[test]
    fn a_malformed_line_names_the_file_and_line() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let line = serde_json::to_string(&record(1, 0.1)).expect("json");
        std::fs::write(tmp.path().join(FILE), format!("{line}\n{{broken\n")).expect("write");
        let err = format!("{:#}", History::load(tmp.path()).expect_err("malformed"));
        assert!(err.contains("history.jsonl:2"), "{err}");
    }
}
