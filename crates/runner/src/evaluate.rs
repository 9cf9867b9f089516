//! Test-split evaluation: greedy captions, image-blind baselines, pycocoevalcap-exact scores.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use caplab_data::vocab::Vocab;
use caplab_metrics::bootstrap::{bootstrap, BootstrapOptions};
use caplab_metrics::{evaluate_stats, EvalOptions, Evaluation, MeteorMode};
use caplab_models::encoder::Arch;
use caplab_models::search::{Hypothesis, SearchSpec};
use caplab_models::{Captioner, Features};
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
    /// 95% bootstrap confidence interval of each metric over the test images (1000 resamples of
    /// the images, the corpus metric recomputed on each, CIDEr-D's document frequencies kept
    /// from the full test set; seeded, so reproducible). Absent in reports of older runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, caplab_metrics::bootstrap::Interval>,
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
    threads: usize,
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
        let hyps = model.caption(
            features.clone(),
            search,
            Vocab::SOS,
            Vocab::EOS,
            Some(Vocab::UNK),
            threads,
        );
        if maps.len() < maps_for {
            let want = (maps_for - maps.len()).min(hyps.len());
            maps.extend(attention_of(model, features, &hyps[..want], device));
        }
        for h in hyps {
            out.push(vocab.decode(&h.tokens));
        }
        pb.inc((end - start) as u64);
    }
    pb.finish_and_clear();
    (out, maps)
}

/// The attention maps behind captions the search produced (`maps[row][word][location]`), for the
/// first `hyps.len()` rows of `features`: each caption is fed back to the decoder, whose
/// attention at step t depends only on the words before t — so these are exactly the maps of
/// the search's own path, for beam search and sampling as for greedy. Empty without attention.
pub fn attention_of<B: Backend>(
    model: &Captioner<B>,
    features: Features<B>,
    hyps: &[Hypothesis],
    device: &B::Device,
) -> Vec<Vec<Vec<f32>>> {
    let n = hyps.len();
    let Features::Grid(grid) = features else {
        return Vec::new();
    };
    if n == 0 || !matches!(model.decoder, caplab_models::Decoder::Attention(_)) {
        return Vec::new();
    }
    let t = hyps
        .iter()
        .map(|h| h.tokens.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut inputs = vec![Vocab::PAD as i64; n * t];
    for (i, h) in hyps.iter().enumerate() {
        inputs[i * t] = Vocab::SOS as i64;
        for (j, w) in h.tokens.iter().take(t - 1).enumerate() {
            inputs[i * t + j + 1] = *w as i64;
        }
    }
    let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [n, t]), device);
    let [_, l, c] = grid.dims();
    let grid = grid.slice([0..n, 0..l, 0..c]);
    let Some(alphas) = model.forward_features(Features::Grid(grid), inputs).alphas else {
        return Vec::new();
    };
    let values: Vec<f32> = alphas.into_data().iter::<f32>().collect();
    hyps.iter()
        .enumerate()
        .map(|(i, h)| {
            (0..h.tokens.len())
                .map(|w| values[(i * t + w) * l..(i * t + w + 1) * l].to_vec())
                .collect()
        })
        .collect()
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
        .caption(zeros, search, Vocab::SOS, Vocab::EOS, Some(Vocab::UNK), 1)
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

/// Keys of test images in reports and `per_image.json` (the image file name).
pub fn image_keys(split: &SplitData) -> Vec<String> {
    split.records.iter().map(|r| r.id.clone()).collect()
}

/// The `image_id` of each image in `captions.json` and `refs.json`: COCO's integer id when every
/// image has one (COCO annotation files, Karpathy entries with `cocoid`), so the COCO tools and
/// leaderboards read the files unchanged; the file name otherwise.
pub fn result_ids(split: &SplitData) -> Vec<serde_json::Value> {
    let ids: Option<Vec<u64>> = split.records.iter().map(|r| r.coco_id).collect();
    match ids {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(serde_json::Value::from).collect(),
        _ => split
            .records
            .iter()
            .map(|r| serde_json::Value::from(r.id.clone()))
            .collect(),
    }
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
    let stats = evaluate_stats(
        &refs,
        &cands,
        &EvalOptions {
            meteor: meteor.clone(),
        },
    )
    .with_context(|| format!("scoring {}", system.name))?;
    let intervals = bootstrap(&stats, &BootstrapOptions::default());
    let eval = stats.evaluation();
    Ok((
        SystemScores {
            name: system.name.clone(),
            metrics: eval.corpus.clone(),
            intervals,
        },
        eval,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::Distribution;
    use caplab_models::search::GreedySearch;
    use caplab_models::ModelSpec;

    #[test]
    fn replayed_maps_are_the_maps_of_the_search_itself() {
        type B = NdArray;
        let device = Default::default();
        let spec: ModelSpec = toml::from_str(
            "[encoder]\narch = \"resnet_tiny\"\n\n[attention]\nembed_dim = 8\nhidden_dim = 12\nattention_dim = 6\n",
        )
        .expect("model spec");
        <B as Backend>::seed(&device, 4);
        let model = spec.init::<B>(15, &device);
        let images = Tensor::<B, 4>::random([4, 3, 64, 64], Distribution::Default, &device);
        let features = model.features(images);
        let greedy = GreedySearch {
            max_len: 7,
            sos: Vocab::SOS,
            eos: Vocab::EOS,
        };
        let (hyps, maps) = model
            .attend(features.clone(), &greedy)
            .expect("an attention decoder");
        let replayed = attention_of(&model, features, &hyps, &device);
        let words: usize = maps.iter().map(Vec::len).sum();
        assert!(words > 0, "the untrained model says something");
        assert_eq!(replayed.len(), maps.len());
        for (row, (got, want)) in replayed.iter().zip(&maps).enumerate() {
            assert_eq!(got.len(), hyps[row].tokens.len(), "one map per word");
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.len(), w.len(), "the grid of the features");
                for (a, b) in g.iter().zip(w) {
                    assert!((a - b).abs() < 1e-5, "row {row}: {a} vs {b}");
                }
            }
        }
    }
}
