//! Training through burn-train's `SupervisedTraining`: Adam, clipping, checkpoints, validation.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use burn::data::dataloader::DataLoaderBuilder;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::AdamConfig;
use burn::record::{CompactRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::logger::FileMetricLogger;
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::LearningRateMetric;
use burn::train::{Learner, MetricEarlyStoppingStrategy, StoppingCondition, SupervisedTraining};

use crate::batch::CaptionBatcher;
use crate::metrics::{CorpusScore, CorpusScoreMetric, TokenLossMetric};
use crate::model::TrainModel;
use crate::prepare::Prepared;
use crate::progress::BarRenderer;
use crate::schedule::{Scheduler, Watch};
use crate::spec::{GradClip, SelectMetric, Spec};
use crate::tensorboard::{EpochValue, TensorBoard, TensorBoardLogger};

/// What training leaves for evaluation.
pub struct Trained<B: AutodiffBackend> {
    /// The model of the best validation epoch (CIDEr), on the inference backend.
    pub model: TrainModel<B::InnerBackend>,
    /// The epoch it comes from.
    pub best_epoch: usize,
    /// Every epoch value of every metric.
    pub epochs: Vec<EpochValue>,
}

/// Trains `model` for the spec's epochs, resuming after `resume_epoch` when given.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    spec: &Spec,
    data: &Prepared,
    model: TrainModel<B>,
    run_dir: &Path,
    board: &TensorBoard,
    resume_epoch: Option<usize>,
    device: &B::Device,
    quiet: bool,
) -> Result<Trained<B>> {
    let t = &spec.train;
    let size = data.image.size as usize;
    let batcher = CaptionBatcher {
        shape: data.train.images.item_shape(size),
        precomputed: data.train.images.precomputed(),
        captions_per_image: t.captions_per_image,
    };
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(t.batch_size)
        .shuffle(spec.experiment.seed)
        .num_workers(t.num_workers.max(1))
        .set_device(device.clone())
        .build(data.train.dataset());
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
    adam = adam.with_grad_clipping(t.grad_clip.map(|c| match c {
        GradClip::Norm(v) => GradientClippingConfig::Norm(v),
        GradClip::Value(v) => GradientClippingConfig::Value(v),
    }));
    let optim = adam.init::<B, TrainModel<B>>();

    let refs = Arc::new(data.val.references());
    let cider = CorpusScoreMetric::new(CorpusScore::Cider, data.vocab.clone(), refs.clone());
    let bleu = CorpusScoreMetric::new(CorpusScore::Bleu4, data.vocab.clone(), refs);
    let epochs = Arc::new(Mutex::new(Vec::new()));
    let select = t.select_metric;
    let direction = || match select {
        SelectMetric::Loss => Direction::Lowest,
        _ => Direction::Highest,
    };
    let keep_best = match select {
        SelectMetric::Cider => {
            MetricCheckpointingStrategy::new(&cider, Aggregate::Mean, direction(), Split::Valid)
        }
        SelectMetric::Bleu4 => {
            MetricCheckpointingStrategy::new(&bleu, Aggregate::Mean, direction(), Split::Valid)
        }
        SelectMetric::Loss => MetricCheckpointingStrategy::new(
            &TokenLossMetric::new(),
            Aggregate::Mean,
            direction(),
            Split::Valid,
        ),
    };
    let strategy = ComposedCheckpointingStrategy::builder()
        .add(KeepLastNCheckpoints::new(2))
        .add(keep_best)
        .build();
    let steps_per_epoch = data.train.records.len().div_ceil(t.batch_size);
    let scheduler = Scheduler::new(t.lr_schedule.clone(), t.lr, steps_per_epoch, t.epochs)
        .watching(Watch {
            epochs: epochs.clone(),
            metric: select.name().to_string(),
            lower_is_better: select == SelectMetric::Loss,
            resumed_after: resume_epoch.unwrap_or(0),
        });

    let mut training = SupervisedTraining::new(run_dir, train_loader, valid_loader)
        // The file logger comes first: best-checkpoint selection reads epoch values back from it.
        .with_metric_logger(FileMetricLogger::new(run_dir.join("metrics")))
        .with_metric_logger(TensorBoardLogger::new(board.clone(), epochs.clone()))
        .metric_train_numeric(TokenLossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(TokenLossMetric::new())
        .metric_valid_numeric(bleu.clone())
        .metric_valid_numeric(cider.clone())
        .with_file_checkpointer(CompactRecorder::new())
        .with_checkpointing_strategy(strategy)
        .with_application_logger(None)
        .renderer(BarRenderer::new(quiet))
        .num_epochs(t.epochs);
    if let Some(epoch) = resume_epoch {
        training = training.checkpoint(epoch);
    }
    if let Some(patience) = t.early_stopping_patience {
        let condition = StoppingCondition::NoImprovementSince {
            n_epochs: patience.max(1),
        };
        let stop = match select {
            SelectMetric::Cider => MetricEarlyStoppingStrategy::new(
                &cider,
                Aggregate::Mean,
                direction(),
                Split::Valid,
                condition,
            ),
            SelectMetric::Bleu4 => MetricEarlyStoppingStrategy::new(
                &bleu,
                Aggregate::Mean,
                direction(),
                Split::Valid,
                condition,
            ),
            SelectMetric::Loss => MetricEarlyStoppingStrategy::new(
                &TokenLossMetric::new(),
                Aggregate::Mean,
                direction(),
                Split::Valid,
                condition,
            ),
        };
        training = training.early_stopping(stop);
    }
    let learner = Learner::new(model, optim, scheduler);
    let result = training.launch(learner);

    let epochs = epochs.lock().map(|e| e.clone()).unwrap_or_default();
    let last_epoch = epochs.iter().map(|e| e.epoch).max().unwrap_or(t.epochs);
    let best_epoch =
        best_epoch(&epochs, select.name(), select == SelectMetric::Loss).unwrap_or(last_epoch);
    let model = load_epoch::<B>(result.model, run_dir, best_epoch, &device.clone())?;
    Ok(Trained {
        model,
        best_epoch,
        epochs,
    })
}

/// The epoch with the best validation value of `metric` (lowest when `lower_is_better`).
pub fn best_epoch(epochs: &[EpochValue], metric: &str, lower_is_better: bool) -> Option<usize> {
    epochs
        .iter()
        .filter(|e| e.split == "valid" && e.metric == metric && e.value.is_finite())
        .fold(None::<(usize, f64)>, |best, e| match best {
            Some((_, v)) if (v <= e.value) == lower_is_better || v == e.value => best,
            _ => Some((e.epoch, e.value)),
        })
        .map(|(epoch, _)| epoch)
}

/// Loads the model checkpoint of `epoch` into `model`, or keeps `model` when it is missing.
fn load_epoch<B: AutodiffBackend>(
    model: TrainModel<B::InnerBackend>,
    run_dir: &Path,
    epoch: usize,
    device: &B::Device,
) -> Result<TrainModel<B::InnerBackend>> {
    let path = run_dir.join("checkpoint").join(format!("model-{epoch}"));
    let file = path.with_extension("mpk");
    if !file.exists() {
        tracing::warn!(
            "checkpoint {} not found; evaluating the last epoch's model",
            file.display()
        );
        return Ok(model);
    }
    let record = CompactRecorder::new()
        .load(path.clone(), device)
        .with_context(|| format!("loading checkpoint {}", file.display()))?;
    Ok(model.load_record(record))
}
