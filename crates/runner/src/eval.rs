//! `caplab eval`: re-decode and re-score a trained run without training.
//!
//! The run directory is self-contained: its `spec.toml` (read exactly), `vocab.json`,
//! `history.jsonl` and `checkpoint/` are all an evaluation needs besides the dataset. Only
//! `eval.*` keys may be overridden (search method, beam size, length penalty, n-gram blocking,
//! sampling, `max_len`, batch size, samples, METEOR directory). Each evaluation writes a new
//! `RUN_DIR/evals/<timestamp>-<id>/` (`eval.toml`, `report.json`, `report.md`, `captions.json`,
//! attention overlays) and never touches the run's own files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::Backend;
use caplab_data::vocab::Vocab;
use serde::{Deserialize, Serialize};

use crate::backend::{resolve, Resolved};
use crate::checkpoint::{choose_epoch, load_model};
use crate::evaluate::{evaluate_test, TestEval};
use crate::feature_cache::attach_feature_cache;
use crate::fsutil::{new_run_dir, write_atomic};
use crate::history::History;
use crate::prepare::{prepare, Prepared};
use crate::report::WallTime;
use crate::run::RunOptions;
use crate::spec::{load_for_eval, CheckpointChoice, EvalSpec, EvalSplit, Spec};
use crate::tensorboard::TensorBoard;
use crate::train::step::TrainModel;

/// What `eval.toml` records of an evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The run evaluated.
    pub run_dir: PathBuf,
    /// The epoch whose checkpoint was decoded.
    pub epoch: usize,
    /// The split decoded.
    pub split: EvalSplit,
    /// The overrides given (`eval.KEY=VALUE`).
    pub overrides: Vec<String>,
    /// The resolved `[eval]` section.
    pub eval: EvalSpec,
}

/// The model of `run_dir`'s checkpoint `epoch`, ready to decode.
pub fn load_checkpoint<B: Backend>(
    spec: &Spec,
    run_dir: &Path,
    epoch: usize,
    vocab_size: usize,
    device: &B::Device,
) -> Result<TrainModel<B>> {
    let model = TrainModel::for_inference(
        spec.model.init::<B>(vocab_size, device),
        spec.eval.search.max_len(),
    );
    load_model(model, run_dir, epoch, device)
}

/// Evaluates `run_dir`'s checkpoint `choice` on `split`; returns the new evaluation directory.
pub fn eval(
    run_dir: &Path,
    choice: CheckpointChoice,
    split: EvalSplit,
    overrides: &[String],
    opts: &RunOptions,
) -> Result<PathBuf> {
    let t0 = Instant::now();
    let spec = load_for_eval(run_dir, overrides)?;
    let history = History::load(run_dir)?;
    let epoch = choose_epoch(&spec, run_dir, &history, choice)?;
    let vocab = Vocab::load(&run_dir.join("vocab.json"))?;
    let mut data = prepare(&spec, Some(vocab), opts.quiet)?;
    if split == EvalSplit::Val {
        data.test = data.val.clone();
    }
    let resolved = resolve(&spec.experiment)?;
    crate::backend::check_model_fits(resolved, &spec.model, data.vocab.len())?;
    let job = EvalJob {
        record: EvalRecord {
            run_dir: run_dir.to_path_buf(),
            epoch,
            split,
            overrides: overrides.to_vec(),
            eval: spec.eval.clone(),
        },
        spec,
        data,
        history,
        resolved,
        t0,
        opts,
    };
    crate::backend::with_backend!(resolved, B, device => eval_on::<B>(job, device))
}

/// An evaluation with everything it needs before it touches a device.
struct EvalJob<'a> {
    spec: Spec,
    data: Prepared,
    history: History,
    record: EvalRecord,
    resolved: Resolved,
    /// When the command started.
    t0: Instant,
    opts: &'a RunOptions,
}

fn eval_on<B: Backend>(job: EvalJob<'_>, device: &B::Device) -> Result<PathBuf> {
    let EvalJob {
        spec,
        mut data,
        history,
        record,
        resolved,
        t0,
        opts,
    } = job;
    let run_dir = &record.run_dir;
    let model = load_checkpoint::<B>(&spec, run_dir, record.epoch, data.vocab.len(), device)?;
    attach_feature_cache::<B>(
        &spec,
        &mut data,
        &model.captioner.encoder,
        device,
        opts.quiet,
    )?;

    // Every check passed: only now does the evaluation get its directory.
    let dir = new_run_dir(run_dir, "evals", spec.experiment.seed)?;
    write_atomic(
        &dir.join("eval.toml"),
        toml::to_string_pretty(&record)?.as_bytes(),
    )?;
    let t_eval = Instant::now();
    let (mut report, gallery) = evaluate_test::<B>(&TestEval {
        spec: &spec,
        data: &data,
        captioner: &model.captioner,
        others: &[],
        dir: &dir,
        resolved,
        epoch: record.epoch,
        epochs: history.epochs(),
        device,
        quiet: opts.quiet,
        source_dir: &opts.source_dir,
    })?;
    // Loading the data, the checkpoint and the feature cache, then captioning and scoring.
    report.wall_time = WallTime {
        prepare_s: t_eval.duration_since(t0).as_secs_f64(),
        train_s: 0.0,
        eval_s: t_eval.elapsed().as_secs_f64(),
        total_s: t0.elapsed().as_secs_f64(),
    };
    crate::report::write(&dir, &report, history.epochs(), &gallery)?;
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let board = TensorBoard::new(&run_dir.join("tensorboard"));
    for s in &report.test {
        for (k, v) in &s.metrics {
            board.scalar(&format!("eval/{id}/{}/{k}", s.name), *v, record.epoch);
        }
    }
    board.flush();
    tracing::info!("evaluation written to {}", dir.display());
    Ok(dir)
}
