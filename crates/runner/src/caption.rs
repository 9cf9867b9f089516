//! `caplab caption`: caption any image files with a trained run.
//!
//! Files and directories (searched recursively, in name order) are decoded, preprocessed as the
//! run's spec says, batched and captioned with the run's checkpoint and `eval.search` (or the
//! overrides given). A file that cannot be decoded, or is over the pixel budget
//! (`preprocess.max_image_pixels`, `--max-image-pixels`), is reported by name and skipped; the
//! others are still captioned, and the command then exits non-zero.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use caplab_data::dataset::{ImageRecord, Split};
use caplab_data::image::load_image;
use caplab_data::vocab::Vocab;

use crate::backend::resolve;
use crate::checkpoint::choose_epoch;
use crate::eval::load_checkpoint;
use crate::evaluate::attention_of;
use crate::history::History;
use crate::progress::bar;
use crate::spec::Spec;
use crate::spec::{load_for_eval, CheckpointChoice};

/// Image file extensions a directory is searched for.
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "JPG"];

/// What `caplab caption` was asked to do.
#[derive(Clone, Debug)]
pub struct CaptionRequest {
    /// The trained run.
    pub run_dir: PathBuf,
    /// Image files and directories.
    pub inputs: Vec<PathBuf>,
    /// Which checkpoint.
    pub checkpoint: CheckpointChoice,
    /// `eval.*` overrides (search settings).
    pub overrides: Vec<String>,
    /// Print JSON lines (`{"image_id", "caption"}`) instead of `path<TAB>caption`.
    pub json: bool,
    /// Write attention overlays here (attention decoders).
    pub overlays: Option<PathBuf>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Pixel budget of one image (`--max-image-pixels`); `None`: the run's
    /// `preprocess.max_image_pixels`.
    pub max_image_pixels: Option<u64>,
}

/// The image files of `inputs`: files as given, directories searched recursively, each
/// directory's files in name order.
pub fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p
                .extension()
                .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut out)?;
        } else if input.exists() {
            out.push(input.clone());
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    Ok(out)
}

/// Captions the request's images, printing one line per image; returns how many failed.
pub fn caption(req: &CaptionRequest) -> Result<usize> {
    let spec = load_for_eval(&req.run_dir, &req.overrides)?;
    let history = History::load(&req.run_dir)?;
    let epoch = choose_epoch(&spec, &req.run_dir, &history, req.checkpoint)?;
    let vocab = Vocab::load(&req.run_dir.join("vocab.json"))?;
    let files = image_files(&req.inputs)?;
    if files.is_empty() {
        bail!("no JPEG or PNG files in the given paths");
    }
    let resolved = resolve(&spec.experiment)?;
    crate::backend::check_model_fits(resolved, &spec.model, vocab.len())?;
    crate::backend::with_backend!(resolved, B, device => caption_on::<B>(
        &spec,
        &vocab,
        epoch,
        &files,
        req,
        resolved.decode_threads(),
        device,
    ))
}

fn caption_on<B: Backend>(
    spec: &Spec,
    vocab: &Vocab,
    epoch: usize,
    files: &[PathBuf],
    req: &CaptionRequest,
    threads: usize,
    device: &B::Device,
) -> Result<usize> {
    let captioner = load_checkpoint::<B>(spec, &req.run_dir, epoch, vocab.len(), device)?.captioner;
    let mut cfg = spec.image_config();
    if let Some(max) = req.max_image_pixels {
        cfg.max_pixels = max;
    }
    let pb = bar(files.len() as u64, "caption", req.quiet);
    let mut failed = 0;
    let mut shown: Vec<(ImageRecord, String, Vec<Vec<f32>>)> = Vec::new();
    let per = cfg.numel();
    for chunk in files.chunks(spec.eval.batch_size.max(1)) {
        let mut pixels = Vec::with_capacity(chunk.len() * per);
        let mut ok = Vec::with_capacity(chunk.len());
        for f in chunk {
            match load_image(f, &cfg) {
                Ok(px) => {
                    pixels.extend_from_slice(&px);
                    ok.push(f);
                }
                Err(e) => {
                    pb.suspend(|| eprintln!("error: {e}; skipped"));
                    failed += 1;
                }
            }
        }
        pb.inc(chunk.len() as u64);
        if ok.is_empty() {
            continue;
        }
        let size = cfg.size as usize;
        let images =
            Tensor::<B, 4>::from_data(TensorData::new(pixels, [ok.len(), 3, size, size]), device);
        let features = captioner.features(images);
        let hyps = captioner.caption(
            features.clone(),
            &spec.eval.search,
            Vocab::SOS,
            Vocab::EOS,
            Some(Vocab::UNK),
            threads,
        );
        let maps = if req.overlays.is_some() {
            attention_of(&captioner, features, &hyps, device)
        } else {
            Vec::new()
        };
        for (i, (file, h)) in ok.iter().zip(&hyps).enumerate() {
            let text = vocab.decode(&h.tokens);
            let name = file.display().to_string();
            pb.suspend(|| {
                if req.json {
                    println!(
                        "{}",
                        serde_json::json!({ "image_id": name, "caption": text })
                    );
                } else {
                    println!("{name}\t{text}");
                }
            });
            if let Some(m) = maps.get(i) {
                let record = ImageRecord {
                    id: file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| format!("{}", shown.len())),
                    path: file.to_path_buf(),
                    captions: Vec::new(),
                    split: Split::Test,
                    coco_id: None,
                };
                shown.push((record, text, m.clone()));
            }
        }
    }
    pb.finish_and_clear();
    if let Some(dir) = &req.overlays {
        let records: Vec<ImageRecord> = shown.iter().map(|s| s.0.clone()).collect();
        let captions: Vec<String> = shown.iter().map(|s| s.1.clone()).collect();
        let maps: Vec<Vec<Vec<f32>>> = shown.into_iter().map(|s| s.2).collect();
        if maps.is_empty() {
            tracing::warn!("no attention overlays: the run's decoder does not attend");
        } else {
            crate::overlay::write_attention_maps(dir, &records, &captions, &maps)?;
        }
    }
    Ok(failed)
}
