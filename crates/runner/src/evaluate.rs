//! Test-split evaluation: the model's captions, image-blind baselines, pycocoevalcap-exact
//! scores with bootstrap intervals, and the files a report rests on ([`evaluate_test`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use caplab_data::vocab::Vocab;
use caplab_metrics::bootstrap::{bootstrap, BootstrapOptions};
use caplab_metrics::{evaluate_stats, EvalOptions, Evaluation, MeteorMode};
use caplab_models::encoder::Arch;
use caplab_models::search::{Hypothesis, SearchSpec};
use caplab_models::{Captioner, Features};

use crate::backend::Resolved;
use crate::batch::batch_features;
use crate::fsutil::{git_commit, write_atomic};
use crate::history::EpochRecord;
use crate::overlay::write_attention_maps;
use crate::prepare::{Prepared, SplitData};
use crate::progress::bar;
use crate::report::{epoch_rows, epoch_times, GalleryItem, Report, Sample, SystemScores, WallTime};
use crate::spec::Spec;

/// Captions of one system for every test image, in split order.
pub struct SystemCaptions {
    /// Row label in the report.
    pub name: String,
    /// One caption per image.
    pub captions: Vec<String>,
}

/// Captions of every test image of `job` by `model` with the spec's search (`eval.search`, in
/// batches of `eval.batch_size`); attention maps of the first `maps_for` images when the decoder
/// attends (`maps[image][word][location]`).
pub fn caption_split<B: Backend>(
    job: &TestEval<'_, B>,
    model: &Captioner<B>,
    maps_for: usize,
) -> (Vec<String>, Vec<Vec<Vec<f32>>>) {
    let split = &job.data.test;
    let vocab = &job.data.vocab;
    let size = job.data.image.size as usize;
    let batch_size = job.spec.eval.batch_size;
    let search = &job.spec.eval.search;
    let threads = job.resolved.decode_threads();
    let (device, quiet) = (job.device, job.quiet);
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
    if n == 0 || !model.decoder.reads_grid() {
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

/// What [`evaluate_test`] decodes, and where its files go.
pub struct TestEval<'a, B: Backend> {
    /// The run's spec (its `[eval]` section decides the search and the METEOR).
    pub spec: &'a Spec,
    /// The prepared dataset; its `test` split is decoded.
    pub data: &'a Prepared,
    /// The captioner of the evaluated checkpoint.
    pub captioner: &'a Captioner<B>,
    /// Other checkpoints decoded and scored the same way, with their row labels (an SCST run's
    /// best cross-entropy epoch).
    pub others: &'a [(String, Captioner<B>)],
    /// The directory `captions.json`, `per_image.json`, `refs.json` and `attention/` go to.
    pub dir: &'a Path,
    /// The device the captions are decoded on.
    pub resolved: Resolved,
    /// The epoch of `captioner`.
    pub epoch: usize,
    /// The run's history (the report's epoch table).
    pub epochs: &'a [EpochRecord],
    /// The device.
    pub device: &'a B::Device,
    /// Hide progress bars.
    pub quiet: bool,
    /// Directory whose git commit the report records.
    pub source_dir: &'a Path,
}

/// Decodes the test split with the model, the other checkpoints and two image-blind baselines,
/// scores them all as pycocoevalcap does, and writes `captions.json`, `per_image.json`,
/// `refs.json` and the attention maps into `job.dir`; returns the report (without the wall
/// times, feature-cache and run-start figures the caller adds) and the gallery of the HTML page.
pub fn evaluate_test<B: Backend>(job: &TestEval<'_, B>) -> Result<(Report, Vec<GalleryItem>)> {
    let TestEval {
        spec,
        data,
        captioner,
        others,
        dir: run_dir,
        resolved,
        epoch: best_epoch,
        epochs,
        device,
        source_dir,
        ..
    } = *job;
    let (captions, maps) = caption_split(job, captioner, spec.eval.samples);
    let attention_maps = write_attention_maps(
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
        let (captions, _) = caption_split(job, other, 0);
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
        git_commit: git_commit(source_dir),
        seed: spec.experiment.seed,
        spec: spec.key_values()?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::Distribution;
    use caplab_models::search::GreedySearch;
    use caplab_models::ModelSpec;

    #[test]
    fn replayed_maps_are_the_maps_of_the_search_itself() {
        let decoders = [
            "[attention]\nembed_dim = 8\nhidden_dim = 12\nattention_dim = 6\n",
            "[transformer]\nnum_layers = 2\nd_model = 8\nnum_heads = 2\nd_ff = 16\n\
             dropout = 0.0\nglobal_token = true\n",
        ];
        for decoder in decoders {
            replayed_maps_match(decoder);
        }
    }

    fn replayed_maps_match(decoder: &str) {
        type B = NdArray;
        let device = Default::default();
        let spec: ModelSpec =
            toml::from_str(&format!("[encoder]\narch = \"resnet_tiny\"\n\n{decoder}"))
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
