//! Training through burn-train's `SupervisedTraining`: Adam, clipping, checkpoints, validation,
//! with every per-epoch number going through the run history (`history.rs`).
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
use burn::module::{AutodiffModule, Module};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::AdamConfig;
use burn::record::Recorder;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::LearningRateMetric;
use burn::train::{Learner, SupervisedTraining};

use crate::batch::CaptionBatcher;
use crate::checkpoint::{complete_epochs, CheckpointRecorder};
use crate::epoch::EpochSample;
use crate::epoch::{EpochEnd, StopWithoutImprovement};
use crate::history::{lock, History, Selection};
use crate::loader::EpochLoader;
use crate::metrics::TokenLossMetric;
use crate::model::TrainModel;
use crate::prepare::Prepared;
use crate::progress::BarRenderer;
use crate::schedule::{Scheduler, Watch};
use crate::spec::{GradClip, SelectMetric, Spec};
use crate::tensorboard::{TensorBoard, TensorBoardLogger};

/// What training leaves for evaluation.
pub struct Trained<B: AutodiffBackend> {
    /// The model of the best validation epoch, on the inference backend.
    pub model: TrainModel<B::InnerBackend>,
    /// The epoch it comes from.
    pub best_epoch: usize,
}

/// The selection metric of the spec.
pub fn selection(spec: &Spec) -> Selection {
    let select = spec.train.select_metric;
    Selection {
        metric: select.name().to_string(),
        lower_is_better: select == SelectMetric::Loss,
    }
}

/// Whether a run whose history is `history` has no epoch left to train.
pub fn finished(spec: &Spec, history: &History) -> bool {
    let sel = selection(spec);
    history.last_epoch() >= spec.train.total_epochs()
        || spec
            .train
            .early_stopping_patience
            .is_some_and(|p| history.should_stop(&sel.metric, sel.lower_is_better, p))
}

/// Trains `model` for the spec's epochs after the `history`'s last epoch (whose checkpoint must
/// exist when it is not 0), then loads the best epoch's checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    spec: &Spec,
    data: &Prepared,
    model: TrainModel<B>,
    run_dir: &Path,
    board: &TensorBoard,
    history: Arc<Mutex<History>>,
    device: &B::Device,
    quiet: bool,
) -> Result<Trained<B>> {
    let t = &spec.train;
    let sel = selection(spec);
    let done = lock(&history).last_epoch();
    let trained = if finished(spec, &lock(&history)) {
        tracing::info!("all epochs were trained before: evaluating");
        model.valid()
    } else {
        launch(
            spec,
            data,
            model,
            run_dir,
            board,
            history.clone(),
            done,
            device,
            quiet,
        )
    };
    let (best_epoch, last_epoch) = {
        let h = lock(&history);
        (
            h.best_epoch(&sel.metric, sel.lower_is_better),
            h.last_epoch(),
        )
    };
    let best_epoch = best_epoch.unwrap_or(last_epoch);
    let _ = t;
    let model = load_epoch::<B>(trained, run_dir, best_epoch, device)?;
    Ok(Trained { model, best_epoch })
}

/// Runs burn-train from epoch `done + 1`.
#[allow(clippy::too_many_arguments)]
fn launch<B: AutodiffBackend>(
    spec: &Spec,
    data: &Prepared,
    model: TrainModel<B>,
    run_dir: &Path,
    board: &TensorBoard,
    history: Arc<Mutex<History>>,
    done: usize,
    device: &B::Device,
    quiet: bool,
) -> TrainModel<B::InnerBackend> {
    let t = &spec.train;
    let sel = selection(spec);
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

    let mut adam = AdamConfig::new();
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    // The global norm is clipped by the model's `optimize` (burn clips per tensor).
    adam = adam.with_grad_clipping(t.grad_clip.and_then(|c| match c {
        GradClip::GlobalNorm(_) | GradClip::Off => None,
        GradClip::PerTensorNorm(v) => Some(GradientClippingConfig::Norm(v)),
        GradClip::Value(v) => Some(GradientClippingConfig::Value(v)),
    }));
    let optim = adam.init::<B, TrainModel<B>>();

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
    let epoch_end = EpochEnd::new(
        history.clone(),
        model.tally.clone(),
        data.vocab.clone(),
        Arc::new(data.val.references()),
        scheduler.clone(),
        steps_per_epoch,
        board.clone(),
        sel.clone(),
        kept,
    )
    .with_samples(EpochSample::first(&data.val.records, 4, 128))
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
        .num_epochs(t.total_epochs());
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

/// Loads the model checkpoint of `epoch` into `model`.
pub fn load_epoch<B: AutodiffBackend>(
    model: TrainModel<B::InnerBackend>,
    run_dir: &Path,
    epoch: usize,
    device: &B::Device,
) -> Result<TrainModel<B::InnerBackend>> {
    let path = run_dir.join("checkpoint").join(format!("model-{epoch}"));
    let file = path.with_extension("mpk");
    if !file.exists() {
        anyhow::bail!(
            "checkpoint {} of the best epoch is missing; the run directory is damaged",
            file.display()
        );
    }
    let record = CheckpointRecorder::default()
        .load(path.clone(), device)
        .with_context(|| format!("loading checkpoint {}", file.display()))?;
    Ok(model.load_record(record))
}
