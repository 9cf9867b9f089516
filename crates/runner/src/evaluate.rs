//! Test-split evaluation: greedy captions, image-blind baselines, pycocoevalcap-exact scores.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use caplab_data::vocab::Vocab;
use caplab_metrics::{evaluate, EvalOptions, Evaluation, MeteorMode};
use caplab_models::encoder::Arch;
use caplab_models::search::{GreedySearch, SearchSpec};
use caplab_models::Captioner;
use serde::Serialize;

use crate::model::batch_features;
use crate::prepare::SplitData;
use crate::progress::bar;

/// Captions of one system for every test image, in split order.
pub struct SystemCaptions {
    /// Row label in the report.
    pub name: String,
    /// One caption per image.
    pub captions: Vec<String>,
}

/// Scores of one system on the test split.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SystemScores {
    /// Row label.
    pub name: String,
    /// Corpus metrics, pycocoevalcap keys.
    pub metrics: BTreeMap<String, f64>,
}

/// METEOR mode from the spec, else `CAPLAB_METEOR_DIR`: the most complete this build has.
pub fn meteor_mode(dir: &Option<PathBuf>) -> MeteorMode {
    MeteorMode::best_available(dir.clone())
}

/// Captions of every image of `split` with the spec's search; attention maps of the first
/// `maps_for` images when the decoder attends (`maps[image][word][location]`).
#[allow(clippy::too_many_arguments)]
pub fn caption_split<B: Backend>(
    model: &Captioner<B>,
    split: &SplitData,
    vocab: &Vocab,
    size: usize,
    batch_size: usize,
    search: &SearchSpec,
    maps_for: usize,
    device: &B::Device,
    quiet: bool,
) -> (Vec<String>, Vec<Vec<Vec<f32>>>) {
    let n = split.records.len();
    let [c, h, w] = split.images.item_shape(size);
    let pb = bar(n as u64, "caption test", quiet);
    let mut out = Vec::with_capacity(n);
    let mut maps = Vec::new();
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let mut pixels = Vec::with_capacity((end - start) * c * h * w);
        for i in start..end {
            pixels.extend_from_slice(&split.images.values(i));
        }
        let values =
            Tensor::<B, 4>::from_data(TensorData::new(pixels, [end - start, c, h, w]), device);
        let features = batch_features(model, values, split.images.precomputed());
        if maps.len() < maps_for {
            let greedy = GreedySearch {
                max_len: search.max_len(),
                sos: Vocab::SOS,
                eos: Vocab::EOS,
            };
            if let Some((_, m)) = model.attend(features.clone(), &greedy) {
                maps.extend(m.into_iter().take(maps_for - maps.len()));
            }
        }
        let hyps = model.caption(features, search, Vocab::SOS, Vocab::EOS, Some(Vocab::UNK));
        for h in hyps {
            out.push(vocab.decode(&h.tokens));
        }
        pb.inc((end - start) as u64);
    }
    pb.finish_and_clear();
    (out, maps)
}

/// The decoder's caption for an all-zero image feature: what it says without looking.
pub fn blind_caption<B: Backend>(
    model: &Captioner<B>,
    arch: Arch,
    vocab: &Vocab,
    search: &SearchSpec,
    device: &B::Device,
) -> String {
    let zeros = model.blind_features(1, arch, device);
    model
        .caption(zeros, search, Vocab::SOS, Vocab::EOS, Some(Vocab::UNK))
        .first()
        .map(|h| vocab.decode(&h.tokens))
        .unwrap_or_default()
}

/// The most frequent training caption (after lower-casing and trimming), ties by first seen.
pub fn most_frequent_caption(train: &SplitData) -> String {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    let mut order = 0;
    for r in &train.records {
        for c in &r.captions {
            let key = c.trim().to_lowercase();
            let e = counts.entry(key).or_insert((0, order));
            e.0 += 1;
            order += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
        .map(|(c, _)| c)
        .unwrap_or_default()
}

/// Keys of test images in reports and `captions.json` (the image file name).
pub fn image_keys(split: &SplitData) -> Vec<String> {
    split.records.iter().map(|r| r.id.clone()).collect()
}

/// Scores `system` against the test references.
pub fn score(
    split: &SplitData,
    system: &SystemCaptions,
    meteor: &MeteorMode,
) -> Result<(SystemScores, Evaluation)> {
    let keys = image_keys(split);
    let refs: BTreeMap<String, Vec<String>> =
        keys.iter().cloned().zip(split.references()).collect();
    let cands: BTreeMap<String, String> = keys
        .iter()
        .cloned()
        .zip(system.captions.iter().cloned())
        .collect();
    let eval = evaluate(
        &refs,
        &cands,
        &EvalOptions {
            meteor: meteor.clone(),
        },
    )
    .with_context(|| format!("scoring {}", system.name))?;
    Ok((
        SystemScores {
            name: system.name.clone(),
            metrics: eval.corpus.clone(),
        },
        eval,
    ))
}
