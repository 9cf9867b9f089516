//! Everything a run needs before it touches a device: dataset, splits, vocabulary, token ids, pixels.

use std::sync::Arc;

use anyhow::{Context, Result};
use caplab_data::config::{load_dataset, DatasetConfig, DatasetKind};
use caplab_data::dataset::{CaptionDataset as Corpus, ImageRecord, Split};
use caplab_data::image::ImageConfig;
use caplab_data::vocab::Vocab;
use rayon::prelude::*;

use crate::batch::{CaptionDataset, ImageSource};
use crate::progress::bar;
use crate::spec::Spec;

/// One split, ready for a loader.
#[derive(Clone)]
pub struct SplitData {
    /// Image records of the split, in dataset order.
    pub records: Vec<ImageRecord>,
    /// Pixels, in memory or on disk.
    pub images: ImageSource,
    /// Token ids of every caption of every image.
    pub tokens: Vec<Vec<Vec<u32>>>,
}

impl SplitData {
    /// The burn dataset of this split.
    pub fn dataset(&self) -> CaptionDataset {
        CaptionDataset::new(self.images.clone(), self.tokens.clone())
    }

    /// Raw reference captions, one list per image.
    pub fn references(&self) -> Vec<Vec<String>> {
        self.records.iter().map(|r| r.captions.clone()).collect()
    }
}

/// The dataset, split and tokenised.
#[derive(Clone)]
pub struct Prepared {
    /// Dataset name.
    pub name: String,
    /// Vocabulary built from the training captions.
    pub vocab: Arc<Vocab>,
    /// Training split.
    pub train: SplitData,
    /// Validation split.
    pub val: SplitData,
    /// Test split.
    pub test: SplitData,
    /// Image preprocessing.
    pub image: ImageConfig,
}

/// Generates the built-in synthetic dataset if the spec asks for it and it is absent.
pub fn ensure_synth(cfg: &DatasetConfig) -> Result<()> {
    if cfg.kind != DatasetKind::Synth {
        return Ok(());
    }
    let exists = cfg.root.is_dir()
        && std::fs::read_dir(&cfg.root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
    if exists {
        return Ok(());
    }
    tracing::info!(
        "synthetic dataset {} not found: generating it ({} images, {} px, seed {})",
        cfg.root.display(),
        cfg.synth.images,
        cfg.synth.size,
        cfg.synth.seed
    );
    let summary = caplab_data::synth::generate(&cfg.synth, &cfg.root)
        .with_context(|| format!("generating the synthetic dataset in {}", cfg.root.display()))?;
    tracing::info!("generated {summary:?}");
    Ok(())
}

/// Loads and tokenises the dataset; `vocab` reuses a saved vocabulary (resume).
pub fn prepare(spec: &Spec, vocab: Option<Vocab>, quiet: bool) -> Result<Prepared> {
    let corpus: Corpus = load_dataset(&spec.data)?;
    let split = |s: Split| -> Vec<ImageRecord> { corpus.split(s).into_iter().cloned().collect() };
    let (train, val, test) = (split(Split::Train), split(Split::Val), split(Split::Test));
    for (name, records) in [("train", &train), ("val", &val), ("test", &test)] {
        if records.is_empty() {
            anyhow::bail!(
                "dataset {} has no {name} images; check data.splits or the split file",
                spec.data.root.display()
            );
        }
    }
    let vocab = match vocab {
        Some(v) => v,
        None => Vocab::build(
            train
                .iter()
                .flat_map(|r| r.captions.iter().map(|c| c.as_str())),
            &spec.preprocess.vocab,
        ),
    };
    let image = ImageConfig {
        size: spec.image_size(),
        ..ImageConfig::default()
    };
    let total_px: usize = (train.len() + val.len() + test.len()) * 3 * (image.size as usize).pow(2);
    // A frozen encoder reads cached features instead: no pixels are decoded here.
    let frozen = spec.model.encoder.trainable == caplab_models::Trainable::Frozen;
    let preload = !frozen && total_px * 4 <= spec.preprocess.preload_max_mib * 1024 * 1024;
    let max_len = spec.preprocess.max_caption_len;
    let make = |records: Vec<ImageRecord>, label: &str| -> Result<SplitData> {
        let tokens = records
            .iter()
            .map(|r| {
                r.captions
                    .iter()
                    .map(|c| {
                        let mut ids = vocab.encode(c);
                        ids.truncate(max_len);
                        ids
                    })
                    .collect()
            })
            .collect();
        let images = if preload {
            ImageSource::Memory(Arc::new(decode_all(&records, &image, label, quiet)?))
        } else {
            ImageSource::Disk(
                Arc::new(records.iter().map(|r| r.path.clone()).collect()),
                image.clone(),
            )
        };
        Ok(SplitData {
            records,
            images,
            tokens,
        })
    };
    Ok(Prepared {
        name: corpus.name.clone(),
        train: make(train, "train")?,
        val: make(val, "val")?,
        test: make(test, "test")?,
        vocab: Arc::new(vocab),
        image,
    })
}

/// Decodes every image of a split in parallel, with a progress bar.
fn decode_all(
    records: &[ImageRecord],
    cfg: &ImageConfig,
    label: &str,
    quiet: bool,
) -> Result<Vec<Arc<[f32]>>> {
    let pb = bar(records.len() as u64, &format!("decode {label}"), quiet);
    let out: Result<Vec<Arc<[f32]>>> = records
        .par_iter()
        .map(|r| {
            let px = crate::batch::decode_counted(&r.path, cfg)?;
            pb.inc(1);
            Ok(Arc::from(px))
        })
        .collect();
    pb.finish_and_clear();
    out
}
