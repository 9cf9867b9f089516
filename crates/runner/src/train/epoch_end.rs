//! The end of an epoch: the steps' tallies become one [`EpochRecord`] in the run history, then
//! burn-train is told which checkpoints to save and delete, and whether to stop early.
//!
//! burn-train calls its checkpointing strategy on the training thread right after validation,
//! so [`EpochEnd`] is where an epoch is finalised: validation captions are scored once (not per
//! batch), the record is appended to `history.jsonl`, TensorBoard gets the epoch scalars, and
//! the checkpoint of the epoch is saved while the last two and the best one are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;
use burn::train::EarlyStoppingStrategy;
use caplab_data::vocab::Vocab;
use caplab_metrics::{evaluate, EvalOptions};

use crate::history::{lock, EpochRecord, History, Selection};
use crate::tensorboard::TensorBoard;
use crate::train::schedule::Scheduler;
use crate::train::tally::Tally;

/// A fixed validation image shown in TensorBoard every epoch with the caption the model gave it.
#[derive(Clone, Debug)]
pub struct EpochSample {
    /// Index of the image in the validation split.
    pub index: usize,
    /// Its name (file name).
    pub name: String,
    /// A thumbnail as PNG bytes.
    pub png: Vec<u8>,
    /// Thumbnail width in pixels.
    pub width: u32,
    /// Thumbnail height in pixels.
    pub height: u32,
    /// Its first reference caption.
    pub reference: String,
}

impl EpochSample {
    /// The first `n` validation images as samples, thumbnails at most `side` pixels, decoded
    /// within the run's pixel budget `max_pixels`; images that cannot be read are skipped with a
    /// warning (TensorBoard extras never stop a run).
    pub fn first(
        records: &[caplab_data::ImageRecord],
        n: usize,
        side: u32,
        max_pixels: u64,
    ) -> Vec<EpochSample> {
        let mut out = Vec::new();
        for (index, r) in records.iter().enumerate().take(n) {
            let img = match caplab_data::image::decode_rgb_within(&r.path, max_pixels) {
                Ok(img) => img,
                Err(e) => {
                    tracing::warn!("no TensorBoard sample for {}: {e}", r.path.display());
                    continue;
                }
            };
            let thumb = image::DynamicImage::ImageRgb8(img).thumbnail(side, side);
            let mut png = Vec::new();
            if let Err(e) =
                thumb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            {
                tracing::warn!("no TensorBoard sample for {}: {e}", r.path.display());
                continue;
            }
            out.push(EpochSample {
                index,
                name: r.id.clone(),
                png,
                width: thumb.width(),
                height: thumb.height(),
                reference: r.captions.first().cloned().unwrap_or_default(),
            });
        }
        out
    }
}

/// Finalises each epoch and drives burn-train's checkpointing (see the module docs).
pub struct EpochEnd {
    /// The run state it reads and writes; `kept` is updated as checkpoints come and go.
    parts: EpochEndParts,
    last: Instant,
    /// The process's CPU seconds when `last` was taken.
    last_cpu: Option<f64>,
    samples: Vec<EpochSample>,
    /// Cross-entropy epochs and whether SCST epochs follow (the history's phase column).
    phases: (usize, bool),
}

/// What an [`EpochEnd`] reads and writes.
pub struct EpochEndParts {
    /// The run history the epoch's record is appended to.
    pub history: Arc<Mutex<History>>,
    /// The steps' sums of the epoch.
    pub tally: Arc<Tally>,
    /// The vocabulary the validation captions are decoded with.
    pub vocab: Arc<Vocab>,
    /// Each validation image's reference captions.
    pub references: Arc<Vec<Vec<String>>>,
    /// The learning-rate schedule (the epoch's rate).
    pub scheduler: Scheduler,
    /// Batches per epoch.
    pub steps_per_epoch: usize,
    /// The run's TensorBoard writer.
    pub board: TensorBoard,
    /// The metric that picks the best epoch.
    pub selection: Selection,
    /// The checkpoints already on disk (resume).
    pub kept: BTreeSet<usize>,
}

impl EpochEnd {
    /// An epoch finaliser.
    pub fn new(parts: EpochEndParts) -> Self {
        Self {
            parts,
            last: Instant::now(),
            last_cpu: crate::cputime::process_cpu_seconds(),
            samples: Vec::new(),
            phases: (usize::MAX, false),
        }
    }

    /// Epochs after the first `xe_epochs` are SCST epochs when `scst` is set.
    pub fn with_phases(mut self, xe_epochs: usize, scst: bool) -> Self {
        self.phases = (xe_epochs, scst);
        self
    }

    /// Shows these validation images and their captions in TensorBoard every epoch.
    pub fn with_samples(mut self, samples: Vec<EpochSample>) -> Self {
        self.samples = samples;
        self
    }

    /// The record of the epoch that just ended, and the captions of the sample images.
    fn record(&mut self, epoch: usize) -> (EpochRecord, Vec<String>) {
        let t = self.parts.tally.take();
        let sample_captions = self
            .samples
            .iter()
            .map(|s| {
                t.captions
                    .get(&s.index)
                    .map(|tokens| self.parts.vocab.decode(tokens))
                    .unwrap_or_default()
            })
            .collect();
        let mean = |sum: f64, n: usize| if n > 0 { sum / n as f64 } else { f64::NAN };
        let mut valid = BTreeMap::from([("Loss".to_string(), mean(t.valid_loss, t.valid_tokens))]);
        valid.extend(score_captions(
            &t.captions,
            &self.parts.vocab,
            &self.parts.references,
        ));
        let step = epoch * self.parts.steps_per_epoch;
        let wall_s = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        let cpu = crate::cputime::process_cpu_seconds();
        let cpu_s = cpu.zip(self.last_cpu).map(|(now, then)| now - then);
        self.last_cpu = cpu;
        let mut train = BTreeMap::from([("Loss".to_string(), mean(t.train_loss, t.train_tokens))]);
        if t.scst_steps > 0 {
            let per_step = |sum: f64| sum / t.scst_steps as f64;
            train.insert("Reward".into(), per_step(t.scst_reward));
            train.insert("GreedyReward".into(), per_step(t.scst_greedy));
            train.insert("Entropy".into(), per_step(t.scst_entropy));
            train.insert("RewardSeconds".into(), t.scst_reward_s);
            train.insert("ModelSeconds".into(), t.scst_model_s);
        }
        let (xe_epochs, scst) = self.phases;
        let record = EpochRecord {
            epoch,
            phase: if scst && epoch > xe_epochs {
                "scst"
            } else {
                "xe"
            }
            .to_string(),
            step,
            lr: self.parts.scheduler.rate_at(step.saturating_sub(1)),
            train,
            valid,
            wall_s,
            cpu_s,
        };
        (record, sample_captions)
    }

    /// The sample images and a markdown table of their captions this epoch.
    fn write_samples(&self, captions: &[String], epoch: usize) {
        if self.samples.is_empty() {
            return;
        }
        let mut table = String::from("| image | caption | first reference |\n|---|---|---|\n");
        for (s, caption) in self.samples.iter().zip(captions) {
            self.parts.board.image(
                &format!("samples/val/{}", s.name),
                s.png.clone(),
                s.width,
                s.height,
                epoch,
            );
            let cell = |t: &str| t.replace('|', "\\|");
            table.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&s.name),
                cell(caption),
                cell(&s.reference)
            ));
        }
        self.parts.board.text("samples/val", &table, epoch);
    }
}

/// Corpus BLEU-4 and CIDEr-D of validation captions (image index → token ids), scored once.
fn score_captions(
    captions: &BTreeMap<usize, Vec<u32>>,
    vocab: &Vocab,
    references: &[Vec<String>],
) -> BTreeMap<String, f64> {
    let mut refs = BTreeMap::new();
    let mut cands = BTreeMap::new();
    for (i, tokens) in captions {
        if let Some(r) = references.get(*i) {
            let key = format!("{i:08}");
            refs.insert(key.clone(), r.clone());
            cands.insert(key, vocab.decode(tokens));
        }
    }
    if cands.is_empty() {
        return BTreeMap::new();
    }
    match evaluate(&refs, &cands, &EvalOptions::default()) {
        Ok(e) => ["BLEU-4", "CIDEr"]
            .into_iter()
            .filter_map(|k| Some((k.to_string(), *e.corpus.get(k)?)))
            .collect(),
        Err(err) => {
            tracing::warn!("validation scoring failed: {err}");
            BTreeMap::new()
        }
    }
}

impl CheckpointingStrategy for EpochEnd {
    fn checkpointing(
        &mut self,
        epoch: usize,
        _collector: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        self.end_epoch(epoch)
    }
}

impl EpochEnd {
    /// Records `epoch` in the history and TensorBoard; returns the checkpoints to save and delete.
    pub fn end_epoch(&mut self, epoch: usize) -> Vec<CheckpointingAction> {
        let (record, sample_captions) = self.record(epoch);
        self.write_samples(&sample_captions, epoch);
        for (split, values) in [("train", &record.train), ("valid", &record.valid)] {
            for (name, v) in values {
                if v.is_finite() {
                    self.parts
                        .board
                        .scalar(&format!("epoch/{split}/{name}"), *v, epoch);
                }
            }
        }
        self.parts.board.scalar("epoch/lr", record.lr, epoch);
        if let Some(cpu) = record.cpu_s.filter(|_| record.wall_s > 0.0) {
            self.parts
                .board
                .scalar("epoch/cpu_percent", 100.0 * cpu / record.wall_s, epoch);
        }
        self.parts.board.flush();
        let fmt = |m: &BTreeMap<String, f64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cpu = record
            .cpu_s
            .filter(|_| record.wall_s > 0.0)
            .map(|c| format!(", CPU {:.0} %", 100.0 * c / record.wall_s))
            .unwrap_or_default();
        tracing::info!(
            "epoch {epoch}: train {}; valid {}; lr {:.3e}; {:.1} s{cpu}",
            fmt(&record.train),
            fmt(&record.valid),
            record.lr,
            record.wall_s
        );
        let best = {
            let mut history = lock(&self.parts.history);
            if let Err(e) = history.append(record) {
                // Without its history line the epoch cannot be resumed: stop here, loudly.
                panic!("cannot record epoch {epoch}: {e:#}");
            }
            // The best epoch of each phase: the cross-entropy row of an SCST run needs its own.
            ["xe", "scst"]
                .iter()
                .filter_map(|p| {
                    history.best_in_phase(
                        &self.parts.selection.metric,
                        self.parts.selection.lower_is_better,
                        p,
                    )
                })
                .collect::<Vec<usize>>()
        };
        // Keep the last two epochs (one may be half-written when the process dies) and the best.
        let mut actions = vec![CheckpointingAction::Save];
        self.parts.kept.insert(epoch);
        let stale: Vec<usize> = self
            .parts
            .kept
            .iter()
            .copied()
            .filter(|&e| e + 1 < epoch && !best.contains(&e))
            .collect();
        for e in stale {
            self.parts.kept.remove(&e);
            actions.push(CheckpointingAction::Delete(e));
        }
        actions
    }
}

/// Early stopping read from the run history: stop when `patience` epochs have passed without
/// the selection metric improving.
#[derive(Clone)]
pub struct StopWithoutImprovement {
    /// The run history.
    pub history: Arc<Mutex<History>>,
    /// The watched metric.
    pub selection: Selection,
    /// Epochs without improvement before stopping.
    pub patience: usize,
}

impl EarlyStoppingStrategy for StopWithoutImprovement {
    fn should_stop(&mut self, _epoch: usize, _store: &EventStoreClient) -> bool {
        lock(&self.history).should_stop(
            &self.selection.metric,
            self.selection.lower_is_better,
            self.patience,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LrSchedule;

    #[test]
    fn an_epoch_is_scored_once_over_all_its_captions_and_keeps_the_last_two_and_the_best() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let captions = [
            "a red circle left of a blue square",
            "a green star",
            "a big yellow triangle above a small black cross",
        ];
        let vocab = Arc::new(Vocab::build(captions.iter().copied(), &Default::default()));
        let refs: Vec<Vec<String>> = captions
            .iter()
            .map(|c| vec![c.to_string(), format!("there is {c}")])
            .collect();
        let history = Arc::new(Mutex::new(History::new(tmp.path())));
        let tally = Arc::new(Tally::default());
        let selection = Selection {
            metric: "CIDEr".into(),
            lower_is_better: false,
        };
        let mut end = EpochEnd::new(EpochEndParts {
            history: history.clone(),
            tally: tally.clone(),
            vocab: vocab.clone(),
            references: Arc::new(refs.clone()),
            scheduler: Scheduler::new(LrSchedule::Constant, 0.01, 2, 4),
            steps_per_epoch: 2,
            board: TensorBoard::new(&tmp.path().join("tb")),
            selection,
            kept: BTreeSet::new(),
        });
        // Epoch 1: perfect captions in two validation batches; epochs 2-4 worse ones.
        let hyps = |good: bool| -> Vec<Vec<u32>> {
            captions
                .iter()
                .map(|c| vocab.encode(if good { c } else { "a green star" }))
                .collect()
        };
        let mut all_actions = Vec::new();
        for epoch in 1..=4 {
            tally.add_train(2.0, 10);
            tally.add_train(1.0, 30);
            let h = hyps(epoch == 1);
            tally.add_valid(3.0, 5, &[0, 1], h[..2].to_vec());
            tally.add_valid(1.0, 15, &[2], h[2..].to_vec());
            all_actions.push(end.end_epoch(epoch));
        }
        let h = lock(&history);
        let first = h.get(1).expect("epoch 1");
        assert_eq!(first.train["Loss"], (2.0 * 10.0 + 30.0) / 40.0);
        assert_eq!(first.valid["Loss"], (3.0 * 5.0 + 15.0) / 20.0);
        assert_eq!(first.step, 2);
        assert_eq!(first.lr, 0.01);
        let direct = score_captions(&hyps(true).into_iter().enumerate().collect(), &vocab, &refs);
        assert_eq!(
            first.valid["CIDEr"], direct["CIDEr"],
            "the corpus score of all batches"
        );
        assert!(h.get(2).expect("epoch 2").valid["CIDEr"] < first.valid["CIDEr"]);
        use CheckpointingAction::{Delete, Save};
        assert_eq!(all_actions[0], vec![Save]);
        assert_eq!(all_actions[1], vec![Save]);
        // Epoch 1 is the best: kept. Epoch 2 goes once epoch 4 is saved.
        assert_eq!(all_actions[2], vec![Save]);
        assert_eq!(all_actions[3], vec![Save, Delete(2)]);
    }
}
