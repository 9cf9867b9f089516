//! `caplab run` and `caplab resume`: prepare, train, evaluate, report — one run directory each.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use caplab_data::vocab::Vocab;

use crate::backend::{resolve, Resolved};
use crate::checkpoint::{load_model, remove_partial_files, verified_epochs};
use crate::evaluate::{evaluate_test, TestEval};
use crate::feature_cache::attach_feature_cache;
use crate::fsutil::{new_run_dir, write_atomic};
use crate::history::{lock, History, Selection};
use crate::prepare::{ensure_synth, prepare, Prepared};
use crate::report::{Report, WallTime};
use crate::spec::{GradClip, Spec};
use crate::tensorboard::TensorBoard;
use crate::train::init_from::InitFrom;
use crate::train::step::{split_threads, TrainModel};
use crate::train::tally::Tally;
use crate::train::{train, TrainSession};

/// Options of a run that are not part of the experiment.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Hide progress bars.
    pub quiet: bool,
    /// Directory whose git commit the report records (the spec's directory).
    pub source_dir: PathBuf,
}

/// Where a run starts from.
enum Start {
    /// A new `<runs_dir>/<experiment>/<timestamp>-<id>/`.
    Fresh,
    /// A new run in a given directory (a sweep trial's).
    Into(PathBuf),
    /// An interrupted run in its own directory.
    Resume(PathBuf),
}

/// Runs an experiment from a resolved spec; returns the run directory.
pub fn run(spec: &Spec, opts: &RunOptions) -> Result<PathBuf> {
    execute(spec, Start::Fresh, opts)
}

/// Runs an experiment into `dir` (created if missing; it must not hold a run already): how a
/// sweep trial gets the directory named after its overrides.
pub fn run_into(spec: &Spec, dir: &Path, opts: &RunOptions) -> Result<PathBuf> {
    if dir.join("spec.toml").exists() {
        bail!(
            "{} already holds a run; resume it with `caplab resume`",
            dir.display()
        );
    }
    execute(spec, Start::Into(dir.to_path_buf()), opts)
}

/// Resumes an interrupted run in its own directory, with the spec it saved (read exactly: no
/// `CAPLAB_*` variable applies), from its last complete checkpoint; a run interrupted before
/// its first checkpoint starts over. The result is the one the run would have had unstopped.
pub fn resume(run_dir: &Path, opts: &RunOptions) -> Result<PathBuf> {
    let spec_path = run_dir.join("spec.toml");
    if !spec_path.is_file() {
        bail!(
            "{} is not a caplab run directory (no spec.toml)",
            run_dir.display()
        );
    }
    if run_dir.join("report.json").exists() {
        bail!(
            "run {} already finished (report.json exists); start a new run instead",
            run_dir.display()
        );
    }
    let spec = crate::spec::load_exact(&spec_path)?;
    execute(&spec, Start::Resume(run_dir.to_path_buf()), opts)
}

/// The history a resumed run continues from: cut back to its last epoch with a complete
/// checkpoint, with the checkpoints and partial files of later epochs removed. Without any
/// complete checkpoint the run starts over: its history, checkpoints and event files go.
fn resume_point(run_dir: &Path) -> Result<History> {
    let mut history = History::load(run_dir)?;
    let dir = run_dir.join("checkpoint");
    remove_partial_files(&dir);
    let (verified, damaged) = verified_epochs(&dir);
    let epoch = verified
        .into_iter()
        .filter(|e| *e <= history.last_epoch())
        .max()
        .unwrap_or(0);
    for (bad, why) in damaged.iter().filter(|(bad, _)| *bad > epoch) {
        tracing::warn!("checkpoint of epoch {bad} does not verify ({why:#}): it is trained again");
    }
    if epoch == 0 {
        tracing::info!(
            "{} has no complete checkpoint: starting it over",
            run_dir.display()
        );
        for sub in ["checkpoint", "tensorboard", "attention"] {
            let path = run_dir.join(sub);
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    } else {
        tracing::info!("resuming {} after epoch {epoch}", run_dir.display());
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                let later = name
                    .rsplit_once('-')
                    .and_then(|(_, n)| {
                        n.strip_suffix(".mpk")
                            .or_else(|| n.strip_suffix(".mpk.sum"))?
                            .parse::<usize>()
                            .ok()
                    })
                    .is_some_and(|n| n > epoch);
                if later {
                    std::fs::remove_file(e.path())
                        .with_context(|| format!("removing {}", e.path().display()))?;
                }
            }
        }
    }
    history.truncate(epoch)?;
    Ok(history)
}

/// A run with everything it needs before it touches a device.
struct Job<'a> {
    spec: &'a Spec,
    /// The prepared dataset and vocabulary.
    data: Prepared,
    /// GloVe rows of the vocabulary (`model.word_vectors`), when set.
    word_vectors: Option<Vec<Option<Vec<f32>>>>,
    start: Start,
    /// The finished run SCST starts from (`train.scst.init_from`).
    init: Option<InitFrom>,
    resolved: Resolved,
    /// Seconds spent preparing, and when the command started.
    prepare_s: f64,
    t0: Instant,
    opts: &'a RunOptions,
}

fn execute(spec: &Spec, start: Start, opts: &RunOptions) -> Result<PathBuf> {
    let t0 = Instant::now();
    let resolved = resolve(&spec.experiment)?;
    if let Resolved::Wgpu {
        precision: crate::spec::Precision::F16,
        ..
    } = resolved
    {
        // Measured on lavapipe (docs/gpu.md): the loss is NaN from the first epoch. burn 0.21
        // keeps weights and Adam's moments in the backend's float type, with no f32 master copy
        // and no loss scaling, and Adam's epsilon (1e-8) is 0 in f16.
        anyhow::bail!(
            "experiment.precision = \"f16\" does not train on wgpu: burn 0.21 has no f32 master \
             weights or loss scaling, and the loss is NaN from the first epoch (docs/gpu.md); \
             train in \"f32\" (f16 evaluation, captioning and features work: \
             `caplab eval RUN --set experiment.precision='\"f16\"'`)"
        );
    }
    let init = InitFrom::open(spec)?;
    if !matches!(start, Start::Resume(_)) {
        ensure_synth(&spec.data)?;
    }
    let saved_vocab = match &start {
        // A run killed before writing its vocabulary rebuilds it: it is a function of the spec
        // (or the `init_from` run's).
        Start::Resume(dir) if dir.join("vocab.json").exists() => {
            Some(Vocab::load(&dir.join("vocab.json"))?)
        }
        Start::Resume(_) | Start::Fresh | Start::Into(_) => init.as_ref().map(|i| i.vocab.clone()),
    };
    let data = prepare(spec, saved_vocab, opts.quiet)?;
    crate::backend::check_model_fits(resolved, &spec.model, data.vocab.len())?;
    let word_vectors = match &spec.model.word_vectors {
        Some(path) => {
            let words: Vec<&str> = (0..data.vocab.len() as u32)
                .map(|id| data.vocab.token(id))
                .collect();
            let dim = spec.model.decoder.embed_dim();
            Some(
                caplab_models::glove::read_vectors(path, &words, dim)
                    .with_context(|| format!("model.word_vectors = {}", path.display()))?,
            )
        }
        None => None,
    };
    let prepare_s = t0.elapsed().as_secs_f64();
    // One call, monomorphised per backend.
    let job = Job {
        spec,
        data,
        word_vectors,
        start,
        init,
        resolved,
        prepare_s,
        t0,
        opts,
    };
    crate::backend::with_backend!(resolved, Inner, device => execute_on::<burn::backend::Autodiff<Inner>>(&job, device))
}

fn execute_on<B: AutodiffBackend>(job: &Job<'_>, device: &B::Device) -> Result<PathBuf> {
    let Job {
        spec,
        ref data,
        ref word_vectors,
        ref start,
        ref init,
        resolved,
        prepare_s,
        t0,
        opts,
    } = *job;
    let init = init.as_ref();
    B::seed(device, spec.experiment.seed);
    let captioner = spec.model.init::<B>(data.vocab.len(), device);
    let captioner = match (&spec.model.encoder.weights, init) {
        // The source run's weights replace every parameter.
        (_, Some(init)) => {
            tracing::info!(
                "SCST starts from {} epoch {}",
                init.dir.display(),
                init.epoch
            );
            init.load(captioner, device)?
        }
        (Some(path), None) => {
            let encoder = caplab_models::encoder::load_encoder(captioner.encoder.clone(), path)
                .with_context(|| format!("model.encoder.weights = {}", path.display()))?;
            captioner.with_encoder(encoder)
        }
        (None, None) => captioner,
    };
    // `model.transformer.weights`: a PyTorch state_dict of the whole transformer decoder (not
    // with `init_from`, whose run's weights replace every parameter).
    let transformer_weights = match &spec.model.decoder {
        caplab_models::DecoderChoice::Transformer(t) if init.is_none() => t.weights.as_ref(),
        _ => None,
    };
    let captioner = match (transformer_weights, captioner.decoder.clone()) {
        (Some(path), caplab_models::Decoder::Transformer(d)) => {
            let d = caplab_models::transformer::load_pytorch_transformer(d, path, "")
                .with_context(|| format!("model.transformer.weights = {}", path.display()))?;
            captioner.with_decoder(caplab_models::Decoder::Transformer(d))
        }
        _ => captioner,
    };
    let captioner = match word_vectors.as_deref().filter(|_| init.is_none()) {
        Some(rows) => {
            let (captioner, found) = captioner.with_word_vectors(rows);
            tracing::info!("word vectors: {found} of {} vocabulary words", rows.len());
            captioner
        }
        None => captioner,
    };
    let mut data = data.clone();
    let feature_cache = attach_feature_cache::<B::InnerBackend>(
        spec,
        &mut data,
        &captioner.encoder.valid(),
        device,
        opts.quiet,
    )?;
    let data = &data;
    // Every check passed: only now does the run get a directory.
    let (run_dir, history) = match start {
        Start::Fresh | Start::Into(_) => {
            let dir = match start {
                Start::Into(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    dir.clone()
                }
                _ => new_run_dir(
                    &spec.experiment.runs_dir,
                    &spec.experiment.name,
                    spec.experiment.seed,
                )?,
            };
            // spec.toml last: it marks a resumable run directory.
            data.vocab.save(&dir.join("vocab.json"))?;
            write_atomic(&dir.join("spec.toml"), spec.to_toml()?.as_bytes())?;
            let history = History::new(&dir);
            (dir, history)
        }
        Start::Resume(dir) => {
            if !dir.join("vocab.json").exists() {
                data.vocab.save(&dir.join("vocab.json"))?;
            }
            let history = resume_point(dir)?;
            (dir.clone(), history)
        }
    };
    let run_dir = run_dir.as_path();
    tracing::info!("run directory {}", run_dir.display());
    let done = history.last_epoch();
    let history = Arc::new(Mutex::new(history));
    let steps_per_epoch = data.train.records.len().div_ceil(spec.train.batch_size);
    let board = TensorBoard::new(&run_dir.join("tensorboard"));
    if board.is_new() {
        board.run_start(spec, run_dir)?;
    }
    let scst = spec.train.scst.as_ref().map(|s| {
        Arc::new(crate::train::scst::ScstStage::new(
            s.clone(),
            &data.train.tokens,
            Some(board.clone()),
        ))
    });
    let model = TrainModel {
        captioner,
        max_len: spec.eval.search.max_len(),
        label_smoothing: spec.train.label_smoothing,
        scheduled: spec.train.scheduled_sampling,
        steps: Arc::new(std::sync::atomic::AtomicUsize::new(done * steps_per_epoch)),
        steps_per_epoch,
        seed: spec.experiment.seed,
        finetune_after: spec.model.encoder.finetune_after,
        finetune_lr: spec.model.encoder.finetune_lr,
        clip_global_norm: match spec.train.grad_clip {
            Some(GradClip::GlobalNorm(v)) => Some(v),
            _ => None,
        },
        tally: Arc::new(Tally::default()),
        xe_epochs: spec.train.epochs,
        scst,
        // A GPU runs the whole batch at once; the split is for CPU cores.
        decoder_threads: match resolved {
            Resolved::Cpu => split_threads(spec),
            _ => 1,
        },
        decode_threads: resolved.decode_threads(),
    };
    let t_train = Instant::now();
    let trained = train::<B>(
        model,
        &TrainSession {
            spec,
            data,
            run_dir,
            board: &board,
            history: history.clone(),
            device,
            quiet: opts.quiet,
        },
    )?;
    let train_s = t_train.elapsed().as_secs_f64();

    let t_eval = Instant::now();
    // An SCST run also reports its best cross-entropy epoch, decoded and scored the same way.
    let mut others = Vec::new();
    if spec.train.scst.is_some() {
        let sel = Selection::of(spec);
        let xe_best = lock(&history).best_in_phase(&sel.metric, sel.lower_is_better, "xe");
        if let Some(epoch) = xe_best.filter(|&e| e != trained.best_epoch) {
            let xe = load_model(trained.model.clone(), run_dir, epoch, device)?.captioner;
            others.push((format!("xe: best cross-entropy epoch {epoch}"), xe));
        }
        if let Some(init) = init {
            let xe = init.load(trained.model.captioner.clone(), device)?;
            let name = format!("xe: {} epoch {}", init.dir.display(), init.epoch);
            others.push((name, xe));
        }
    }
    let (report, gallery) = evaluate_test::<B::InnerBackend>(&TestEval {
        spec,
        data,
        captioner: &trained.model.captioner,
        others: &others,
        dir: run_dir,
        resolved,
        epoch: trained.best_epoch,
        epochs: lock(&history).epochs(),
        device,
        quiet: opts.quiet,
        source_dir: &opts.source_dir,
    })?;
    let eval_s = t_eval.elapsed().as_secs_f64();
    for s in &report.test {
        for (k, v) in &s.metrics {
            let tag = format!("test/{}/{}", s.name, k);
            board.scalar(&tag, *v, trained.best_epoch);
        }
    }
    board.flush();
    let report = Report {
        feature_cache: feature_cache.clone(),
        // Images decoded by the pipeline, plus those the cache build decoded to encode them.
        images_decoded: crate::batch::IMAGES_DECODED.load(std::sync::atomic::Ordering::Relaxed)
            + feature_cache
                .as_ref()
                .filter(|c| c.built)
                .map_or(0, |c| c.images),
        started: run_started(run_dir, start, t0),
        wall_time: WallTime {
            prepare_s,
            train_s,
            eval_s,
            total_s: t0.elapsed().as_secs_f64(),
        },
        ..report
    };
    let markdown = crate::report::write(run_dir, &report, lock(&history).epochs(), &gallery)?;
    board.run_end(
        &markdown,
        lock(&history).last_epoch().max(trained.best_epoch),
    );
    tracing::info!("report written to {}", run_dir.join("report.md").display());
    Ok(run_dir.to_path_buf())
}

/// When the run started: this process's start for a new run; for a resumed one, when its
/// directory got its spec (the first attempt).
fn run_started(run_dir: &Path, start: &Start, t0: Instant) -> String {
    let first = match start {
        Start::Resume(_) => std::fs::metadata(run_dir.join("spec.toml"))
            .and_then(|m| m.modified())
            .ok()
            .map(chrono::DateTime::<chrono::Local>::from),
        Start::Fresh | Start::Into(_) => None,
    };
    first
        .unwrap_or_else(|| {
            chrono::Local::now() - chrono::Duration::from_std(t0.elapsed()).unwrap_or_default()
        })
        .to_rfc3339()
}
