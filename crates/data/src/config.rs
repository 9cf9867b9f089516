//! Dataset configuration and the single entry point [`load_dataset`] that reads any supported dataset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::coco::read_coco_captions;
use crate::dataset::{assign_default_splits, CaptionDataset, ImageRecord, Split};
use crate::error::DataError;
use crate::flickr8k::{group_rows, read_caption_rows, resolve_images_dir};
use crate::karpathy::{read_karpathy, KarpathyFile};
use crate::synth::SynthConfig;

/// Which on-disk format a dataset uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// The built-in shapes dataset written by [`crate::synth::generate`].
    Synth,
    /// Flickr8k in the Kaggle layout (`captions.txt` + `Images/`), optionally with a Karpathy split file.
    Flickr8k,
    /// Any Karpathy split JSON (Flickr8k/Flickr30k/COCO); captions and splits come from the JSON.
    Karpathy,
    /// A COCO captions annotation JSON, optionally split by a Karpathy split file.
    Coco,
}

/// Where and how to read a dataset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset format.
    pub kind: DatasetKind,
    /// Dataset root directory; other paths are relative to it.
    pub root: PathBuf,
    /// Captions file: flickr8k/synth default `captions.txt`; coco default `annotations/captions_train2014.json`.
    #[serde(default)]
    pub captions: Option<PathBuf>,
    /// Karpathy split JSON: synth default `splits.json`; required for karpathy; optional for flickr8k/coco.
    #[serde(default)]
    pub splits: Option<PathBuf>,
    /// Images folder: default `images/`, else `Images/` if present (karpathy/coco fall back to the root).
    #[serde(default)]
    pub images_dir: Option<PathBuf>,
    /// Keep only the first N images (sorted by file name), applied before the default split rule.
    #[serde(default)]
    pub max_images: Option<usize>,
    /// Generator settings used when the synth dataset is (re)generated.
    #[serde(default)]
    pub synth: SynthConfig,
}

impl DatasetConfig {
    /// A config for the built-in synthetic dataset at `root` with default settings.
    pub fn synth(root: impl Into<PathBuf>) -> Self {
        DatasetConfig {
            kind: DatasetKind::Synth,
            root: root.into(),
            captions: None,
            splits: None,
            images_dir: None,
            max_images: None,
            synth: SynthConfig::default(),
        }
    }
}

/// Loads the dataset described by `cfg`, checking that every listed image file exists and that
/// no JPEG is truncated ([`crate::image::check_complete`]).
///
/// * `synth`: `captions.txt` (Kaggle CSV) + `splits.json` (Karpathy) + `images/`; every image
///   must appear in the split file.
/// * `flickr8k`: `captions.txt` + `images/` or `Images/`. With `splits`, images absent from the
///   split file are dropped; without it the default rule of [`assign_default_splits`] applies.
/// * `karpathy`: captions, splits and file names from the split JSON (`restval` → train).
/// * `coco`: annotation JSON; split as for flickr8k.
///
/// A root that does not exist gives [`DataError::MissingRoot`], which tells the user to run
/// `caplab data synth --out DIR` or read README's "Datasets" section.
pub fn load_dataset(cfg: &DatasetConfig) -> Result<CaptionDataset, DataError> {
    let root = &cfg.root;
    if !root.exists() {
        return Err(DataError::MissingRoot { root: root.clone() });
    }
    if !root.is_dir() {
        return Err(DataError::Config(format!(
            "dataset root {} is not a directory",
            root.display()
        )));
    }
    let rel =
        |p: &Option<PathBuf>, default: &str| root.join(p.as_deref().unwrap_or(Path::new(default)));
    let (name, mut images) = match cfg.kind {
        DatasetKind::Synth => {
            let csv = rel(&cfg.captions, "captions.txt");
            let images_dir = root.join(cfg.images_dir.as_deref().unwrap_or(Path::new("images")));
            let records = group_rows(&csv, read_caption_rows(&csv)?, &images_dir)?;
            let splits_path = rel(&cfg.splits, "splits.json");
            let split_file = read_karpathy(&splits_path)?;
            let name = non_empty(&split_file.dataset, "shapes");
            let records = apply_split_file(records, &split_file, &splits_path, true)?;
            (name, truncate(records, cfg.max_images))
        }
        DatasetKind::Flickr8k => {
            let csv = rel(&cfg.captions, "captions.txt");
            let images_dir = resolve_images_dir(root, cfg.images_dir.as_deref());
            let records = group_rows(&csv, read_caption_rows(&csv)?, &images_dir)?;
            ("flickr8k".to_string(), split_optional(records, cfg, root)?)
        }
        DatasetKind::Karpathy => {
            let splits_path = cfg.splits.as_ref().map(|p| root.join(p)).ok_or_else(|| {
                DataError::Config(
                    "kind = \"karpathy\" needs `splits` (e.g. dataset_flickr8k.json)".into(),
                )
            })?;
            let file = read_karpathy(&splits_path)?;
            let images_dir = default_images_dir(root, cfg.images_dir.as_deref());
            let mut records = Vec::with_capacity(file.images.len());
            for (i, im) in file.images.iter().enumerate() {
                let path = images_dir.join(im.relative_path());
                if !path.is_file() {
                    return Err(DataError::record(
                        &splits_path,
                        format!("images[{i}] ({})", im.filename),
                        format!("image file {} does not exist", path.display()),
                    ));
                }
                records.push(ImageRecord {
                    id: im.filename.clone(),
                    path,
                    captions: im
                        .sentences
                        .iter()
                        .map(|s| s.raw.trim().to_string())
                        .collect(),
                    split: im.parsed_split().unwrap_or(Split::Train),
                });
            }
            records.sort_by(|a, b| a.id.cmp(&b.id));
            (
                non_empty(&file.dataset, "karpathy"),
                truncate(records, cfg.max_images),
            )
        }
        DatasetKind::Coco => {
            let ann = rel(&cfg.captions, "annotations/captions_train2014.json");
            let images_dir = default_images_dir(root, cfg.images_dir.as_deref());
            let mut records = Vec::new();
            for im in read_coco_captions(&ann)? {
                let path = images_dir.join(&im.file_name);
                if !path.is_file() {
                    return Err(DataError::record(
                        &ann,
                        format!("image id {} ({})", im.id, im.file_name),
                        format!("image file {} does not exist", path.display()),
                    ));
                }
                records.push(ImageRecord {
                    id: im.file_name,
                    path,
                    captions: im.captions,
                    split: Split::Train,
                });
            }
            ("coco".to_string(), split_optional(records, cfg, root)?)
        }
    };
    images.sort_by(|a, b| a.id.cmp(&b.id));
    {
        use rayon::prelude::*;
        images
            .par_iter()
            .try_for_each(|r| crate::image::check_complete(&r.path))?;
    }
    let ds = CaptionDataset {
        name,
        root: root.clone(),
        images,
    };
    tracing::info!(
        dataset = %ds.name,
        root = %ds.root.display(),
        train = ds.split_len(Split::Train),
        val = ds.split_len(Split::Val),
        test = ds.split_len(Split::Test),
        captions = ds.num_captions(),
        "dataset loaded"
    );
    Ok(ds)
}

fn non_empty(s: &str, default: &str) -> String {
    if s.is_empty() { default } else { s }.to_string()
}

fn truncate(mut records: Vec<ImageRecord>, max: Option<usize>) -> Vec<ImageRecord> {
    records.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(max) = max {
        records.truncate(max);
    }
    records
}

fn default_images_dir(root: &Path, images_dir: Option<&Path>) -> PathBuf {
    let dir = resolve_images_dir(root, images_dir);
    if images_dir.is_none() && !dir.is_dir() {
        root.to_path_buf()
    } else {
        dir
    }
}

/// Applies `cfg.splits` if set, else truncates and applies the default split rule.
fn split_optional(
    records: Vec<ImageRecord>,
    cfg: &DatasetConfig,
    root: &Path,
) -> Result<Vec<ImageRecord>, DataError> {
    match &cfg.splits {
        Some(p) => {
            let path = root.join(p);
            let file = read_karpathy(&path)?;
            Ok(truncate(
                apply_split_file(records, &file, &path, false)?,
                cfg.max_images,
            ))
        }
        None => {
            let mut records = truncate(records, cfg.max_images);
            assign_default_splits(&mut records);
            Ok(records)
        }
    }
}

/// Sets each record's split from a Karpathy file (matched by file name).
///
/// With `strict`, a record missing from the file is an error; otherwise it is dropped.
fn apply_split_file(
    records: Vec<ImageRecord>,
    file: &KarpathyFile,
    path: &Path,
    strict: bool,
) -> Result<Vec<ImageRecord>, DataError> {
    let by_name: HashMap<&str, Split> = file
        .images
        .iter()
        .map(|im| {
            (
                im.filename.as_str(),
                im.parsed_split().unwrap_or(Split::Train),
            )
        })
        .collect();
    let total = records.len();
    let mut kept = Vec::with_capacity(total);
    for mut r in records {
        match by_name.get(r.id.as_str()) {
            Some(&s) => {
                r.split = s;
                kept.push(r);
            }
            None if strict => {
                return Err(DataError::parse(
                    path,
                    format!(
                        "image {} has captions but is not listed in the split file",
                        r.id
                    ),
                ))
            }
            None => {}
        }
    }
    if kept.len() != total {
        tracing::info!(
            file = %path.display(),
            dropped = total - kept.len(),
            "images not listed in the split file were dropped"
        );
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_root_mentions_synth_command() {
        let cfg = DatasetConfig::synth("/definitely/not/here/shapes");
        let err = load_dataset(&cfg).unwrap_err().to_string();
        assert!(err.contains("caplab data synth --out"), "{err}");
        assert!(err.contains("Datasets"), "{err}");
        assert!(err.contains("/definitely/not/here/shapes"), "{err}");
    }

    #[test]
    fn config_parses_from_toml_like_json() {
        let cfg: DatasetConfig =
            serde_json::from_str(r#"{"kind":"flickr8k","root":"data/flickr8k","max_images":10}"#)
                .unwrap();
        assert_eq!(cfg.kind, DatasetKind::Flickr8k);
        assert_eq!(cfg.max_images, Some(10));
        assert_eq!(cfg.synth, SynthConfig::default());
        assert!(serde_json::from_str::<DatasetConfig>(r#"{"kind":"x","root":"r"}"#).is_err());
        assert!(
            serde_json::from_str::<DatasetConfig>(r#"{"kind":"coco","root":"r","bogus":1}"#)
                .is_err()
        );
    }

    fn flickr_fixture(dir: &Path, n: usize) {
        let images = dir.join("Images");
        std::fs::create_dir_all(&images).unwrap();
        let mut csv = String::from("image,caption\n");
        for i in 0..n {
            std::fs::write(images.join(format!("{i:03}.jpg")), b"x").unwrap();
            csv.push_str(&format!(
                "{i:03}.jpg,\"caption {i}, first\"\n{i:03}.jpg,caption {i} second\n"
            ));
        }
        std::fs::write(dir.join("captions.txt"), csv).unwrap();
    }

    #[test]
    fn flickr8k_default_split_and_max_images() {
        let dir = tempfile::tempdir().unwrap();
        flickr_fixture(dir.path(), 40);
        let mut cfg = DatasetConfig::synth(dir.path());
        cfg.kind = DatasetKind::Flickr8k;
        let ds = load_dataset(&cfg).unwrap();
        assert_eq!(ds.images.len(), 40);
        assert_eq!(
            ds.images[0].captions,
            vec!["caption 0, first", "caption 0 second"]
        );
        assert_eq!(
            (
                ds.split_len(Split::Train),
                ds.split_len(Split::Val),
                ds.split_len(Split::Test)
            ),
            (30, 5, 5)
        );
        assert_eq!(ds.images[39].split, Split::Test);
        cfg.max_images = Some(16);
        let ds = load_dataset(&cfg).unwrap();
        assert_eq!(
            (
                ds.split_len(Split::Train),
                ds.split_len(Split::Val),
                ds.split_len(Split::Test)
            ),
            (12, 2, 2)
        );
    }

    #[test]
    fn karpathy_and_coco_kinds() {
        let dir = tempfile::tempdir().unwrap();
        flickr_fixture(dir.path(), 3);
        std::fs::write(
            dir.path().join("split.json"),
            r#"{"dataset":"flickr8k","images":[
              {"filename":"000.jpg","split":"test","sentences":[{"raw":"a b"}]},
              {"filename":"002.jpg","split":"val","sentences":[{"raw":"c d"},{"raw":"e"}]}]}"#,
        )
        .unwrap();
        let mut cfg = DatasetConfig::synth(dir.path());
        cfg.kind = DatasetKind::Karpathy;
        cfg.splits = Some("split.json".into());
        let ds = load_dataset(&cfg).unwrap();
        assert_eq!(ds.name, "flickr8k");
        assert_eq!(ds.images.len(), 2);
        assert_eq!(ds.images[1].split, Split::Val);
        assert_eq!(ds.images[1].path, dir.path().join("Images/002.jpg"));
        // flickr8k + split file: 001.jpg is not listed and is dropped.
        cfg.kind = DatasetKind::Flickr8k;
        let ds = load_dataset(&cfg).unwrap();
        assert_eq!(ds.images.len(), 2);
        assert_eq!(ds.images[0].split, Split::Test);
        assert_eq!(ds.images[0].captions.len(), 2);
        // coco
        std::fs::write(
            dir.path().join("caps.json"),
            r#"{"images":[{"id":1,"file_name":"001.jpg"},{"id":2,"file_name":"missing.jpg"}],
               "annotations":[{"image_id":1,"id":7,"caption":"hello"},{"image_id":2,"id":8,"caption":"x"}]}"#,
        )
        .unwrap();
        cfg.kind = DatasetKind::Coco;
        cfg.splits = None;
        cfg.captions = Some("caps.json".into());
        let err = load_dataset(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("caps.json") && err.contains("missing.jpg"),
            "{err}"
        );
    }
}
