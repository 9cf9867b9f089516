//! Training through burn-train's `SupervisedTraining`: Adam, clipping, checkpoints, validation,
//! with every per-epoch number going through the run history ([`crate::history`]).
//!
//! - [`step`]: the training step, [`step::TrainModel`] — the captioner as burn-train sees it;
//!   its losses are in [`loss`]; [`scst`] samples the captions and advantages of the SCST
//!   epochs; [`tally`] sums an epoch's figures; [`clip`] clips the global gradient norm;
//! - [`epoch_end`]: an epoch's record, TensorBoard scalars, checkpoints kept, early stopping;
//! - [`schedule`]: the learning-rate schedule, stepped per batch; [`loader`]: the epoch's data
//!   order; [`loss_metric`]: burn-train's metric adapters; [`init_from`]: SCST from another run.
//!
//! What makes a resumed run identical to an uninterrupted one: the epoch's data order comes from
//! `(seed, epoch)` ([`EpochLoader`]); each step's random draws from `(seed, step)`
//! (`TrainModel`); model, optimizer and schedule position are restored from full-precision
//! checkpoints; the plateau schedule, best-epoch selection and early stopping read the history.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use burn::data::dataloader::DataLoaderBuilder;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::AdamConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::LearningRateMetric;
use burn::train::{Learner, SupervisedTraining};

pub mod clip;
pub mod epoch_end;
pub mod init_from;
pub mod loader;
pub mod loss;
pub mod loss_metric;
pub mod schedule;
pub mod scst;
pub mod step;
pub mod tally;

use crate::batch::CaptionBatcher;
use crate::checkpoint::{
    complete_epochs, load_model, remove_partial_files, verify_record, write_record,
    CheckpointRecorder,
};
use crate::history::{lock, History, Selection};
use crate::prepare::Prepared;
use crate::progress::BarRenderer;
use crate::spec::{GradClip, Spec};
use crate::tensorboard::{TensorBoard, TensorBoardLogger};
use epoch_end::{EpochEnd, EpochEndParts, EpochSample, StopWithoutImprovement};
use loader::EpochLoader;
use loss_metric::TokenLossMetric;
use schedule::{Scheduler, Watch};
use step::TrainModel;

/// What training leaves for evaluation.
pub struct Trained<B: AutodiffBackend> {
    /// The model of the best validation epoch, on the inference backend.
    pub model: TrainModel<B::InnerBackend>,
    /// The epoch it comes from.
    pub best_epoch: usize,
}

/// Whether a run whose history is `history` has no epoch left to train.
pub fn finished(spec: &Spec, history: &History) -> bool {
    let sel = Selection::of(spec);
    history.last_epoch() >= spec.train.total_epochs()
        || spec
            .train
            .early_stopping_patience
            .is_some_and(|p| history.should_stop(&sel.metric, sel.lower_is_better, p))
}

/// Where and with what a run trains.
pub struct TrainSession<'a, B: AutodiffBackend> {
    /// The run's spec.
    pub spec: &'a Spec,
    /// The prepared dataset and vocabulary.
    pub data: &'a Prepared,
    /// The run directory (`checkpoint/`, `history.jsonl`).
    pub run_dir: &'a Path,
    /// The run's TensorBoard writer.
    pub board: &'a TensorBoard,
    /// The run history, shared with the epoch's end and the schedule.
    pub history: Arc<Mutex<History>>,
    /// The device.
    pub device: &'a B::Device,
    /// Hide progress bars.
    pub quiet: bool,
}

/// Trains `model` for the spec's epochs after the `history`'s last epoch (whose checkpoint must
/// exist when it is not 0), then loads the best epoch's checkpoint.
///
/// The cross-entropy epochs and the SCST epochs are two burn-train launches. Before the first
/// SCST epoch, the checkpoint of the last cross-entropy epoch becomes the state SCST starts
/// from ([`start_scst`]): the best cross-entropy epoch's weights and Adam moments.
pub fn train<B: AutodiffBackend>(
    model: TrainModel<B>,
    session: &TrainSession<'_, B>,
) -> Result<Trained<B>> {
    let TrainSession {
        spec,
        run_dir,
        ref history,
        device,
        ..
    } = *session;
    let t = &spec.train;
    let sel = Selection::of(spec);
    let mut trained = None;
    if finished(spec, &lock(history)) {
        tracing::info!("all epochs were trained before: evaluating");
    } else {
        // The last epoch of each phase: cross-entropy, then SCST.
        let mut ends = vec![t.epochs];
        if t.scst.is_some() {
            ends.push(t.total_epochs());
        }
        for end in ends {
            let done = lock(history).last_epoch();
            if done >= end {
                continue;
            }
            if end > t.epochs && done == t.epochs && done > 0 {
                start_scst(spec, run_dir, &lock(history))?;
            }
            trained = Some(launch(model.clone(), session, end));
        }
    }
    let trained = trained.unwrap_or_else(|| model.valid());
    // The checksums of the records burn-train deleted.
    remove_partial_files(&run_dir.join("checkpoint"));
    let (best_epoch, last_epoch) = {
        let h = lock(history);
        (
            h.best_epoch(&sel.metric, sel.lower_is_better),
            h.last_epoch(),
        )
    };
    let best_epoch = best_epoch.unwrap_or(last_epoch);
    let model = load_model(trained, run_dir, best_epoch, device)?;
    Ok(Trained { model, best_epoch })
}

/// The optimizer of every epoch: Adam with the spec's weight decay and per-tensor clipping
/// (the global norm is clipped by the model's `optimize`; burn clips per tensor).
fn adam(spec: &Spec) -> AdamConfig {
    let t = &spec.train;
    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    adam.with_grad_clipping(t.grad_clip.and_then(|c| match c {
        GradClip::GlobalNorm(_) | GradClip::Off => None,
        GradClip::PerTensorNorm(v) => Some(GradientClippingConfig::Norm(v)),
        GradClip::Value(v) => Some(GradientClippingConfig::Value(v)),
    }))
}

/// Makes the checkpoint of the last cross-entropy epoch `E = train.epochs` the state the SCST
/// epochs start from: the best cross-entropy epoch's (by `train.select_metric`). When that is
/// not `E`, its weights and Adam moments are copied over `model-E` and `optim-E`, so burn-train
/// resumes from them into epoch `E + 1` (the step count and the schedule stay `E`'s). Written
/// atomically from files this leaves in place: a run killed here redoes it to the same result.
pub fn start_scst(spec: &Spec, run_dir: &Path, history: &History) -> Result<()> {
    let xe = spec.train.epochs;
    let sel = Selection::of(spec);
    let best = history
        .best_in_phase(&sel.metric, sel.lower_is_better, "xe")
        .unwrap_or(xe);
    if best != xe {
        let dir = run_dir.join("checkpoint");
        for kind in ["model", "optim"] {
            let from = dir.join(format!("{kind}-{best}.mpk"));
            verify_record(&from)?;
            let bytes =
                std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            write_record(&dir.join(format!("{kind}-{xe}.mpk")), &bytes)?;
        }
    }
    tracing::info!("SCST starts from cross-entropy epoch {best}");
    Ok(())
}

/// Runs burn-train from the epoch after the history's last through epoch `end`.
fn launch<B: AutodiffBackend>(
    model: TrainModel<B>,
    session: &TrainSession<'_, B>,
    end: usize,
) -> TrainModel<B::InnerBackend> {
    let TrainSession {
        spec,
        data,
        run_dir,
        board,
        ref history,
        device,
        quiet,
    } = *session;
    let history = history.clone();
    let t = &spec.train;
    let sel = Selection::of(spec);
    let done = lock(&history).last_epoch();
    let size = data.image.size as usize;
    let batcher = CaptionBatcher {
        shape: data.train.images.item_shape(size),
        precomputed: data.train.images.precomputed(),
        captions_per_image: t.captions_per_image,
    };
    let train_loader = Arc::new(EpochLoader::<B>::new(
        Arc::new(data.train.dataset()),
        batcher,
        t.batch_size,
        spec.experiment.seed,
        t.num_workers,
        device.clone(),
        done + 1,
    ));
    let valid_loader = DataLoaderBuilder::new(CaptionBatcher {
        shape: data.val.images.item_shape(size),
        precomputed: data.val.images.precomputed(),
        captions_per_image: 1,
    })
    .batch_size(spec.eval.batch_size)
    .num_workers(1)
    .set_device(device.clone())
    .build(data.val.dataset());

    let optim = adam(spec).init::<B, TrainModel<B>>();

    let steps_per_epoch = data.train.records.len().div_ceil(t.batch_size);
    let mut scheduler = Scheduler::new(t.lr_schedule.clone(), t.lr, steps_per_epoch, t.epochs)
        .watching(Watch {
            history: history.clone(),
            selection: sel.clone(),
        });
    if let Some(scst) = &t.scst {
        scheduler = scheduler.then_constant(scst.lr);
    }
    let kept: BTreeSet<usize> = complete_epochs(&run_dir.join("checkpoint"))
        .into_iter()
        .filter(|e| *e <= done)
        .collect();
    let epoch_end = EpochEnd::new(EpochEndParts {
        history: history.clone(),
        tally: model.tally.clone(),
        vocab: data.vocab.clone(),
        references: Arc::new(data.val.references()),
        scheduler: scheduler.clone(),
        steps_per_epoch,
        board: board.clone(),
        selection: sel.clone(),
        kept,
    })
    .with_samples(EpochSample::first(
        &data.val.records,
        4,
        128,
        data.image.max_pixels,
    ))
    .with_phases(t.epochs, t.scst.is_some());

    let mut training = SupervisedTraining::new(run_dir, train_loader, valid_loader)
        .with_metric_logger(TensorBoardLogger::new(
            board.clone(),
            done * steps_per_epoch,
        ))
        .metric_train_numeric(TokenLossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(TokenLossMetric::new())
        .with_file_checkpointer(CheckpointRecorder::default())
        .with_checkpointing_strategy(epoch_end)
        .with_application_logger(None)
        .renderer(BarRenderer::new(quiet))
        .num_epochs(end);
    if done > 0 {
        training = training.checkpoint(done);
    }
    if let Some(patience) = t.early_stopping_patience {
        training = training.early_stopping(StopWithoutImprovement {
            history,
            selection: sel,
            patience,
        });
    }
    let learner = Learner::new(model, optim, scheduler);
    training.launch(learner).model
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::write_atomic;
    use crate::history::EpochRecord;
    use std::collections::BTreeMap;

    fn epoch(epoch: usize, cider: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            phase: "xe".into(),
            step: epoch * 4,
            lr: 1e-3,
            train: BTreeMap::new(),
            valid: BTreeMap::from([("CIDEr".to_string(), cider)]),
            wall_s: 1.0,
            cpu_s: None,
        }
    }

    #[test]
    fn scst_starts_from_the_best_cross_entropy_epochs_weights_and_adam_moments() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = tmp.path();
        let ckpt = run.join("checkpoint");
        std::fs::create_dir_all(&ckpt).expect("mkdir");
        let spec: Spec = toml::from_str(
            "[experiment]\nname = \"t\"\n[data]\nkind = \"synth\"\nroot = \"d\"\n[model.encoder]\narch = \"resnet_tiny\"\n[model.decoder]\n[train]\nepochs = 3\n[train.scst]\n",
        )
        .expect("spec");
        // Epoch 2 is the best cross-entropy epoch; epoch 3 is the last.
        let mut history = History::new(run);
        for (e, cider) in [(1, 0.2), (2, 0.5), (3, 0.4)] {
            history.append(epoch(e, cider)).expect("append");
            for kind in ["model", "optim", "scheduler"] {
                let path = ckpt.join(format!("{kind}-{e}.mpk"));
                write_atomic(&path, format!("{kind} {e}").as_bytes()).expect("write");
            }
        }
        // Twice: a run killed after the first call redoes it to the same files.
        for _ in 0..2 {
            start_scst(&spec, run, &history).expect("start");
            let read = |name: &str| std::fs::read(ckpt.join(name)).expect(name);
            assert_eq!(read("model-3.mpk"), b"model 2");
            assert_eq!(read("optim-3.mpk"), b"optim 2");
            assert_eq!(
                read("scheduler-3.mpk"),
                b"scheduler 3",
                "the schedule position stays"
            );
            assert_eq!(read("model-2.mpk"), b"model 2");
        }
        // When the last epoch is the best, nothing changes.
        let mut history = History::new(&tmp.path().join("other"));
        history.append(epoch(1, 0.1)).expect("append");
        let mut last = epoch(2, 0.2);
        last.epoch = 2;
        history.append(last).expect("append");
        let mut spec2 = spec.clone();
        spec2.train.epochs = 2;
        start_scst(&spec2, run, &history).expect("start");
        assert_eq!(
            std::fs::read(ckpt.join("model-2.mpk")).expect("2"),
            b"model 2"
        );
    }
}
