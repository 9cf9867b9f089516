//! TensorBoard event files: a burn-train `MetricLogger` that forwards every scalar.
//!
//! Train metrics are written per step (`train/Loss`, `train/Learning Rate`); every metric is also
//! written per epoch as `epoch/<split>/<name>` (`epoch/valid/CIDEr`, `epoch/valid/Loss`, …).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use tensorboard_rs::summary_writer::SummaryWriter;

/// A shared TensorBoard writer; clones write to the same event file.
#[derive(Clone)]
pub struct TensorBoard {
    writer: Arc<Mutex<SummaryWriter>>,
}

impl TensorBoard {
    /// Opens an event file in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            writer: Arc::new(Mutex::new(SummaryWriter::new(dir))),
        }
    }

    /// Writes one scalar.
    pub fn scalar(&self, tag: &str, value: f64, step: usize) {
        if let Ok(mut w) = self.writer.lock() {
            w.add_scalar(tag, value as f32, step);
        }
    }

    /// Flushes the event file to disk.
    pub fn flush(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.flush();
        }
    }
}

/// Sums of one metric over the current epoch.
#[derive(Default)]
struct EpochSum {
    sum: f64,
    count: usize,
}

/// Forwards burn-train metrics to TensorBoard and remembers every epoch value.
pub struct TensorBoardLogger {
    board: TensorBoard,
    names: HashMap<MetricId, String>,
    step: usize,
    sums: HashMap<(String, String), EpochSum>,
    epochs: Arc<Mutex<Vec<EpochValue>>>,
}

/// The value of one metric over one epoch and split.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochValue {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// `train` or `valid`.
    pub split: String,
    /// Metric name.
    pub metric: String,
    /// Epoch value (token-weighted mean loss, corpus score).
    pub value: f64,
}

impl TensorBoardLogger {
    /// A logger writing to `board`; epoch values are appended to `epochs`.
    pub fn new(board: TensorBoard, epochs: Arc<Mutex<Vec<EpochValue>>>) -> Self {
        Self {
            board,
            names: HashMap::new(),
            step: 0,
            sums: HashMap::new(),
            epochs,
        }
    }
}

fn split_name(split: &Split) -> String {
    match split {
        Split::Train => "train".into(),
        Split::Valid => "valid".into(),
        other => other.to_string(),
    }
}

impl MetricLogger for TensorBoardLogger {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        let split = split_name(split);
        if split == "train" {
            self.step += 1;
        }
        for entry in update.entries_numeric {
            let name = self
                .names
                .get(&entry.entry.metric_id)
                .cloned()
                .unwrap_or_else(|| "metric".to_string());
            let (value, count) = match entry.numeric_entry {
                NumericEntry::Value(v) => (v, 1),
                NumericEntry::Aggregated {
                    aggregated_value,
                    count,
                } => (aggregated_value, count),
            };
            if split == "train" && value.is_finite() {
                self.board
                    .scalar(&format!("train/{name}"), value, self.step);
            }
            let acc = self.sums.entry((split.clone(), name)).or_default();
            acc.sum += value * count as f64;
            acc.count += count;
        }
    }

    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        Err("the TensorBoard logger does not read back".to_string())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let split = split_name(&summary.split);
        let epoch = summary.epoch_number;
        let mut done = Vec::new();
        for ((s, name), acc) in &self.sums {
            if *s != split || acc.count == 0 {
                continue;
            }
            let value = acc.sum / acc.count as f64;
            self.board
                .scalar(&format!("epoch/{split}/{name}"), value, epoch);
            if let Ok(mut e) = self.epochs.lock() {
                e.push(EpochValue {
                    epoch,
                    split: split.clone(),
                    metric: name.clone(),
                    value,
                });
            }
            done.push((s.clone(), name.clone()));
        }
        for key in done {
            self.sums.remove(&key);
        }
        self.board.flush();
    }
}
