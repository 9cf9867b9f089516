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

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::record::Recorder;
use burn::tensor::backend::Backend;
use caplab_data::vocab::Vocab;
use serde::{Deserialize, Serialize};

use crate::backend::{resolve, Resolved};
use crate::checkpoint::{complete_epochs, CheckpointRecorder};
use crate::fsutil::{new_run_dir, write_atomic};
use crate::history::History;
use crate::model::TrainModel;
use crate::prepare::prepare;
use crate::report::WallTime;
use crate::run::{attach_feature_cache, evaluate_and_report, RunOptions};
use crate::spec::{nest, Spec};
use crate::tensorboard::TensorBoard;
use crate::train::selection;

/// Which checkpoint of a run to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointChoice {
    /// The epoch the run itself evaluated (best validation `train.select_metric`).
    Best,
    /// The last trained epoch.
    Last,
    /// A given epoch (its checkpoint must still be on disk).
    Epoch(usize),
}

impl std::str::FromStr for CheckpointChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "best" => Ok(Self::Best),
            "last" => Ok(Self::Last),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .map(Self::Epoch)
                .ok_or_else(|| format!("{s:?}: expected best, last or an epoch number ≥ 1")),
        }
    }
}

/// The split an evaluation decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    /// The test split (what the run's report scores).
    Test,
    /// The validation split.
    Val,
}

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
    pub eval: crate::spec::EvalSpec,
}

/// The run's spec with `eval.*` overrides applied; any other key is an error naming it.
pub fn eval_spec(run_dir: &Path, overrides: &[String]) -> Result<Spec> {
    let path = run_dir.join("spec.toml");
    if !path.is_file() {
        bail!(
            "{} is not a caplab run directory (no spec.toml)",
            run_dir.display()
        );
    }
    let spec = crate::spec::load_exact(&path)?;
    if overrides.is_empty() {
        return Ok(spec);
    }
    let mut value = toml::Value::try_from(&spec).context("serialising the run's spec")?;
    for item in overrides {
        let (key, raw) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected eval.KEY=VALUE"))?;
        let key = key.trim();
        if !key.starts_with("eval.") {
            bail!(
                "--set {item:?}: caplab eval only changes eval.* keys (search, batch_size, \
                 samples, meteor_dir); {key} is part of the trained run"
            );
        }
        let snippet: toml::Table = nest(key, raw.trim()).parse().with_context(|| {
            format!("--set {item:?}: the value is not valid TOML (quote strings: key=\"text\")")
        })?;
        merge(&mut value, toml::Value::Table(snippet));
    }
    let spec: Spec = value
        .try_into()
        .map_err(|e| anyhow::anyhow!("invalid --set for {}: {e}", path.display()))?;
    spec.validate()?;
    Ok(spec)
}

/// Merges `patch` into `base`, tables key by key, other values replaced.
fn merge(base: &mut toml::Value, patch: toml::Value) {
    match (base, patch) {
        (toml::Value::Table(b), toml::Value::Table(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    // A whole `search = { method = … }` replaces the old table (another method
                    // has other keys), keeping `max_len` unless it gives one.
                    Some(existing) if k == "search" && v.get("method").is_some() => {
                        let max_len = existing.get("max_len").cloned();
                        let mut v = v;
                        if let (Some(t), Some(m)) = (v.as_table_mut(), max_len) {
                            t.entry("max_len").or_insert(m);
                        }
                        *existing = v;
                    }
                    Some(existing) if v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// The epoch `choice` names in `run_dir` (whose history is `history`); its checkpoint must be
/// on disk.
pub fn choose_epoch(
    spec: &Spec,
    run_dir: &Path,
    history: &History,
    choice: CheckpointChoice,
) -> Result<usize> {
    let sel = selection(spec);
    let last = history.last_epoch();
    if last == 0 {
        bail!("the run has no finished epoch (empty history.jsonl)");
    }
    let epoch = match choice {
        CheckpointChoice::Best => history
            .best_epoch(&sel.metric, sel.lower_is_better)
            .unwrap_or(last),
        CheckpointChoice::Last => last,
        CheckpointChoice::Epoch(n) => n,
    };
    let available = complete_epochs(&run_dir.join("checkpoint"));
    if !available.contains(&epoch) {
        bail!(
            "{}: no checkpoint of epoch {epoch}; the run kept epochs {available:?}",
            run_dir.join("checkpoint").display()
        );
    }
    Ok(epoch)
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
    let path = run_dir.join("checkpoint").join(format!("model-{epoch}"));
    let weights = CheckpointRecorder::default()
        .load(path.clone(), device)
        .with_context(|| format!("loading checkpoint {}.mpk", path.display()))?;
    Ok(model.load_record(weights))
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
    let spec = eval_spec(run_dir, overrides)?;
    let history = History::load(run_dir)?;
    let epoch = choose_epoch(&spec, run_dir, &history, choice)?;
    let vocab = Vocab::load(&run_dir.join("vocab.json"))?;
    let mut data = prepare(&spec, Some(vocab), opts.quiet)?;
    if split == EvalSplit::Val {
        data.test = data.val.clone();
    }
    let resolved = resolve(&spec.experiment)?;
    let record = EvalRecord {
        run_dir: run_dir.to_path_buf(),
        epoch,
        split,
        overrides: overrides.to_vec(),
        eval: spec.eval.clone(),
    };
    crate::backend::with_backend!(resolved, B, device => eval_on::<B>(
        &spec,
        data,
        &history,
        &record,
        resolved,
        t0,
        device,
        opts,
    ))
}

#[allow(clippy::too_many_arguments)]
fn eval_on<B: Backend>(
    spec: &Spec,
    mut data: crate::prepare::Prepared,
    history: &History,
    record: &EvalRecord,
    resolved: Resolved,
    t0: Instant,
    device: &B::Device,
    opts: &RunOptions,
) -> Result<PathBuf> {
    let run_dir = &record.run_dir;
    let model = load_checkpoint::<B>(spec, run_dir, record.epoch, data.vocab.len(), device)?;
    attach_feature_cache::<B>(
        spec,
        &mut data,
        &model.captioner.encoder,
        device,
        opts.quiet,
    )?;

    // Every check passed: only now does the evaluation get its directory.
    let dir = new_run_dir(run_dir, "evals", spec.experiment.seed)?;
    write_atomic(
        &dir.join("eval.toml"),
        toml::to_string_pretty(record)?.as_bytes(),
    )?;
    let t_eval = Instant::now();
    let (mut report, gallery) = evaluate_and_report::<B>(
        spec,
        &data,
        &model,
        &dir,
        resolved,
        record.epoch,
        history.epochs(),
        &[],
        device,
        opts,
    )?;
    // Loading the data, the checkpoint and the feature cache, then captioning and scoring.
    report.wall_time = WallTime {
        prepare_s: t_eval.duration_since(t0).as_secs_f64(),
        train_s: 0.0,
        eval_s: t_eval.elapsed().as_secs_f64(),
        total_s: t0.elapsed().as_secs_f64(),
    };
    write_atomic(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(&dir.join("report.md"), report.to_markdown().as_bytes())?;
    let page = crate::report::html::page(&report, history.epochs(), &gallery);
    write_atomic(&dir.join("report.html"), page.as_bytes())?;
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
