//! `caplab run` and `caplab resume`: prepare, train, evaluate, report — one run directory each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use caplab_data::vocab::Vocab;

use crate::backend::{resolve, Resolved};
use crate::checkpoint::{complete_epochs, remove_partial_files};
use crate::epoch::Tally;
use crate::evaluate::{
    blind_caption, caption_split, image_keys, most_frequent_caption, result_ids, score,
    SystemCaptions,
};
use crate::fsutil::{git_commit, new_run_dir, write_atomic};
use crate::history::{lock, EpochRecord, History};
use crate::init_from::InitFrom;
use crate::model::TrainModel;
use crate::prepare::{ensure_synth, prepare, Prepared};
use crate::report::html::GalleryItem;
use crate::report::{epoch_rows, epoch_times, FeatureCacheInfo, Report, Sample, WallTime};
use crate::spec::{GradClip, Spec};
use crate::tensorboard::TensorBoard;
use crate::train::train;

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
    let epoch = complete_epochs(&dir)
        .into_iter()
        .filter(|e| *e <= history.last_epoch())
        .max()
        .unwrap_or(0);
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
                    .and_then(|(_, n)| n.strip_suffix(".mpk")?.parse::<usize>().ok())
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

fn execute(spec: &Spec, start: Start, opts: &RunOptions) -> Result<PathBuf> {
    let t0 = Instant::now();
    let resolved = resolve(&spec.experiment)?;
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
    crate::backend::with_backend!(resolved, Inner, device => execute_on::<burn::backend::Autodiff<Inner>>(
        spec,
        &data,
        word_vectors.as_deref(),
        &start,
        init.as_ref(),
        resolved,
        device,
        prepare_s,
        t0,
        opts,
    ))
}

#[allow(clippy::too_many_arguments)]
fn execute_on<B: AutodiffBackend>(
    spec: &Spec,
    data: &Prepared,
    word_vectors: Option<&[Option<Vec<f32>>]>,
    start: &Start,
    init: Option<&InitFrom>,
    resolved: Resolved,
    device: &B::Device,
    prepare_s: f64,
    t0: Instant,
    opts: &RunOptions,
) -> Result<PathBuf> {
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
            let encoder =
                caplab_models::encoder::weights::load_torchvision(captioner.encoder.clone(), path)
                    .with_context(|| format!("model.encoder.weights = {}", path.display()))?;
            captioner.with_encoder(encoder)
        }
        (None, None) => captioner,
    };
    let captioner = match word_vectors.filter(|_| init.is_none()) {
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
        Arc::new(crate::scst::ScstStage::new(
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
            Resolved::Cpu => crate::model::split_threads(spec),
            _ => 1,
        },
        decode_threads: resolved.decode_threads(),
    };
    let t_train = Instant::now();
    let trained = train::<B>(
        spec,
        data,
        model,
        run_dir,
        &board,
        history.clone(),
        device,
        opts.quiet,
    )?;
    let train_s = t_train.elapsed().as_secs_f64();

    let t_eval = Instant::now();
    // An SCST run also reports its best cross-entropy epoch, decoded and scored the same way.
    let mut others = Vec::new();
    if spec.train.scst.is_some() {
        let sel = crate::train::selection(spec);
        let xe_best = lock(&history).best_in_phase(&sel.metric, sel.lower_is_better, "xe");
        if let Some(epoch) = xe_best.filter(|&e| e != trained.best_epoch) {
            let xe = crate::train::load_epoch::<B>(trained.model.clone(), run_dir, epoch, device)?;
            others.push((format!("xe: best cross-entropy epoch {epoch}"), xe));
        }
        if let Some(init) = init {
            let xe = crate::train::load_epoch::<B>(
                trained.model.clone(),
                &init.dir,
                init.epoch,
                device,
            )?;
            let name = format!("xe: {} epoch {}", init.dir.display(), init.epoch);
            others.push((name, xe));
        }
    }
    let (report, gallery) = evaluate_and_report::<B::InnerBackend>(
        spec,
        data,
        &trained.model,
        run_dir,
        resolved,
        trained.best_epoch,
        lock(&history).epochs(),
        &others,
        device,
        opts,
    )?;
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
    write_atomic(
        &run_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let markdown = report.to_markdown();
    write_atomic(&run_dir.join("report.md"), markdown.as_bytes())?;
    let page = crate::report::html::page(&report, lock(&history).epochs(), &gallery);
    write_atomic(&run_dir.join("report.html"), page.as_bytes())?;
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

#[allow(clippy::too_many_arguments)]
pub fn evaluate_and_report<B: Backend>(
    spec: &Spec,
    data: &Prepared,
    model: &TrainModel<B>,
    run_dir: &Path,
    resolved: Resolved,
    best_epoch: usize,
    epochs: &[EpochRecord],
    others: &[(String, TrainModel<B>)],
    device: &B::Device,
    opts: &RunOptions,
) -> Result<(Report, Vec<GalleryItem>)> {
    let size = data.image.size as usize;
    let captioner = &model.captioner;
    let (captions, maps) = caption_split(
        captioner,
        &data.test,
        &data.vocab,
        size,
        spec.eval.batch_size,
        &spec.eval.search,
        spec.eval.samples,
        resolved.decode_threads(),
        device,
        opts.quiet,
    );
    let attention_maps = crate::overlay::write_attention_maps(
        &run_dir.join("attention"),
        &data.test.records,
        &captions,
        &maps,
    )?;
    let keys = image_keys(&data.test);
    let ids = result_ids(&data.test);
    let results: Vec<serde_json::Value> = ids
        .iter()
        .zip(&captions)
        .map(|(k, c)| serde_json::json!({ "image_id": k, "caption": c }))
        .collect();
    write_atomic(
        &run_dir.join("captions.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;

    let n = captions.len();
    let blind = blind_caption(
        captioner,
        spec.model.encoder.arch,
        &data.vocab,
        &spec.eval.search,
        device,
    );
    let frequent = most_frequent_caption(&data.train);
    let meteor = spec.eval.meteor_mode();
    let mut systems = vec![SystemCaptions {
        name: "model".into(),
        captions: captions.clone(),
    }];
    // Other checkpoints of the run decoded the same way (an SCST run's cross-entropy row).
    for (name, other) in others {
        let (captions, _) = caption_split(
            &other.captioner,
            &data.test,
            &data.vocab,
            size,
            spec.eval.batch_size,
            &spec.eval.search,
            0,
            resolved.decode_threads(),
            device,
            opts.quiet,
        );
        systems.push(SystemCaptions {
            name: name.clone(),
            captions,
        });
    }
    systems.push(SystemCaptions {
        name: "blind: zero image feature".into(),
        captions: vec![blind; n],
    });
    systems.push(SystemCaptions {
        name: "blind: most frequent train caption".into(),
        captions: vec![frequent; n],
    });
    let mut test = Vec::new();
    let mut per_image = BTreeMap::new();
    for s in &systems {
        let (scores, evaluation) = score(&data.test, s, &meteor)?;
        per_image.insert(s.name.clone(), evaluation.per_image);
        test.push(scores);
    }
    let model_scores = per_image.get("model");
    let gallery: Vec<GalleryItem> = data
        .test
        .records
        .iter()
        .zip(&captions)
        .enumerate()
        .map(|(i, (r, c))| GalleryItem {
            id: r.id.clone(),
            path: r.path.clone(),
            caption: c.clone(),
            references: r.captions.clone(),
            cider: model_scores
                .and_then(|m| m.get(&r.id))
                .and_then(|m| m.get("CIDEr"))
                .copied(),
            attention: attention_maps.get(i).cloned(),
        })
        .collect();
    // Per-image scores of every system (for significance tests), and the references in COCO's
    // annotation format, so `caplab score` and pycocoevalcap reproduce the report from here.
    write_atomic(
        &run_dir.join("per_image.json"),
        serde_json::to_string_pretty(&per_image)?.as_bytes(),
    )?;
    let mut annotations = Vec::new();
    for (k, refs) in ids.iter().zip(data.test.references()) {
        for caption in refs {
            annotations.push(serde_json::json!({
                "image_id": k, "id": annotations.len(), "caption": caption
            }));
        }
    }
    // `file_name` as COCO's annotation files have it, and `path` where this run read the image:
    // for readers that only have the run directory (`caplab compare`'s gallery), also when
    // `image_id` is COCO's integer id.
    let images: Vec<serde_json::Value> = ids
        .iter()
        .zip(&data.test.records)
        .map(|(k, r)| serde_json::json!({ "id": k, "file_name": r.id, "path": r.path }))
        .collect();
    write_atomic(
        &run_dir.join("refs.json"),
        serde_json::to_string(&serde_json::json!({
            "images": images,
            "annotations": annotations,
        }))?
        .as_bytes(),
    )?;
    let cider = |i: usize| test[i].metrics.get("CIDEr").copied().unwrap_or(0.0);
    let blind_best = cider(1).max(cider(2));
    let cider_over_blind = (blind_best > 0.0).then(|| cider(0) / blind_best);

    let train_captions: Vec<&str> = data
        .train
        .records
        .iter()
        .flat_map(|r| r.captions.iter().map(|c| c.as_str()))
        .collect();
    let results_map: BTreeMap<String, String> =
        keys.iter().cloned().zip(captions.iter().cloned()).collect();
    let diagnostics = serde_json::to_value(caplab_metrics::diagnostics::diagnose(
        &results_map,
        train_captions,
    ))?;

    let samples = data
        .test
        .records
        .iter()
        .zip(&captions)
        .take(spec.eval.samples)
        .enumerate()
        .map(|(i, (r, c))| Sample {
            image: r.id.clone(),
            caption: c.clone(),
            references: r.captions.clone(),
            attention: attention_maps.get(i).cloned(),
        })
        .collect();

    let report = Report {
        experiment: spec.experiment.name.clone(),
        run_dir: run_dir.to_path_buf(),
        started: chrono::Local::now().to_rfc3339(),
        dataset: format!("{} ({})", data.name, spec.data.root.display()),
        device: resolved.describe().to_string(),
        git_commit: git_commit(&opts.source_dir),
        seed: spec.experiment.seed,
        spec: key_values(spec)?,
        encoder_weights: match &spec.model.encoder.weights {
            Some(p) => p.display().to_string(),
            None => "none: randomly initialised".to_string(),
        },
        vocab_size: data.vocab.len(),
        split_sizes: [
            data.train.records.len(),
            data.val.records.len(),
            data.test.records.len(),
        ],
        best_epoch,
        epochs: epoch_rows(epochs),
        epoch_times: epoch_times(epochs),
        test,
        cider_over_blind,
        metric_signature: {
            let mut sig = caplab_metrics::Signature::for_options(&caplab_metrics::EvalOptions {
                meteor: meteor.clone(),
            })?
            .to_string();
            // How an SCST run's training reward counted (SacreEOS: <eos> in the reward moves CIDEr).
            if let Some(scst) = &spec.train.scst {
                sig.push_str(&format!(
                    "|scst-reward:cider-D={},bleu4={},df=train,eos={}",
                    scst.reward.cider,
                    scst.reward.bleu4,
                    if scst.include_eos_in_reward {
                        "yes"
                    } else {
                        "no"
                    }
                ));
            }
            sig
        },
        samples,
        diagnostics,
        feature_cache: None,
        images_decoded: 0,
        wall_time: WallTime::default(),
    };
    Ok((report, gallery))
}

/// With a frozen encoder, encodes every image once into the feature cache (or reuses the
/// cached file) and makes every split read its rows instead of pixels.
pub fn attach_feature_cache<B: Backend>(
    spec: &Spec,
    data: &mut Prepared,
    encoder: &caplab_models::encoder::Encoder<B>,
    device: &B::Device,
    quiet: bool,
) -> Result<Option<FeatureCacheInfo>> {
    use crate::features::{cached, feature_key};
    if spec.model.encoder.trainable != caplab_models::Trainable::Frozen {
        return Ok(None);
    }
    let spatial = spec.model.decoder.is_attention();
    let images: Vec<(String, PathBuf)> = [&data.train, &data.val, &data.test]
        .iter()
        .flat_map(|s| s.records.iter().map(|r| (r.id.clone(), r.path.clone())))
        .collect();
    let key = feature_key(
        &spec.model.encoder.encoder_config(),
        &data.image,
        &images,
        spatial,
    )?;
    let pb = crate::progress::bar(images.len() as u64, "encode", quiet);
    let (store, built) = cached(
        &spec.preprocess.feature_cache,
        &key,
        encoder,
        &images,
        spec.eval.batch_size,
        device,
        &mut |done, _| pb.set_position(done as u64),
    )?;
    pb.finish_and_clear();
    let store = std::sync::Arc::new(store);
    let info = FeatureCacheInfo {
        path: store.path().to_path_buf(),
        built,
        images: images.len(),
    };
    let mut offset = 0;
    for split in [&mut data.train, &mut data.val, &mut data.test] {
        split.images = crate::batch::ImageSource::Features {
            store: store.clone(),
            offset,
            spatial,
        };
        offset += split.records.len();
    }
    Ok(Some(info))
}

/// The spec flattened to `section.key = value` strings.
pub fn key_values(spec: &Spec) -> Result<BTreeMap<String, String>> {
    Ok(spec
        .leaves()?
        .into_iter()
        .map(|(key, value)| (key, value.to_string()))
        .collect())
}
