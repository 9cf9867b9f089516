//! Dataset configuration: where a dataset is and in which format (the `[data]` section of a
//! spec), with its defaults. Reading the dataset these settings describe is [`crate::load`]'s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::synth::SynthConfig;

/// Which on-disk format a dataset uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// The built-in shapes dataset written by [`crate::synth::generate`].
    Synth,
    /// Flickr8k: the Kaggle layout (`captions.txt` + `Images/`) or the original one
    /// (`Flickr8k.token.txt` + `Flicker8k_Dataset/`, split by `Flickr_8k.trainImages.txt`,
    /// `Flickr_8k.devImages.txt`, `Flickr_8k.testImages.txt` when all three are in the root);
    /// the captions file's name picks the layout.
    Flickr8k,
    /// Flickr30k: `results_20130124.token` (token layout) or the Kaggle `results.csv`
    /// (`image_name| comment_number| comment`), images in `flickr30k_images/`.
    Flickr30k,
    /// Any Karpathy split JSON (Flickr8k/Flickr30k/COCO); captions and splits come from the JSON.
    Karpathy,
    /// One or more COCO captions annotation JSONs, optionally split by a Karpathy split file.
    Coco,
}

impl DatasetKind {
    /// The lower-case name used in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Synth => "synth",
            DatasetKind::Flickr8k => "flickr8k",
            DatasetKind::Flickr30k => "flickr30k",
            DatasetKind::Karpathy => "karpathy",
            DatasetKind::Coco => "coco",
        }
    }
}

/// One captions file, or several (`captions = ["a.json", "b.json"]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CaptionFiles {
    /// A single file (what older specs have).
    One(PathBuf),
    /// Several files, read in order.
    Many(Vec<PathBuf>),
}

impl CaptionFiles {
    /// The files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            CaptionFiles::One(p) => std::slice::from_ref(p),
            CaptionFiles::Many(v) => v,
        }
    }
}

impl From<&str> for CaptionFiles {
    fn from(p: &str) -> Self {
        CaptionFiles::One(p.into())
    }
}

impl From<PathBuf> for CaptionFiles {
    fn from(p: PathBuf) -> Self {
        CaptionFiles::One(p)
    }
}

/// Where the split comes from: a Karpathy split JSON, or three lists of image file names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SplitSource {
    /// A Karpathy split JSON (`dataset_flickr8k.json`, `dataset_coco.json`, …).
    Karpathy(PathBuf),
    /// Text files with one image file name per line, as Flickr8k's `Flickr_8k.*Images.txt`.
    Lists(SplitLists),
}

impl From<&str> for SplitSource {
    fn from(p: &str) -> Self {
        SplitSource::Karpathy(p.into())
    }
}

impl From<PathBuf> for SplitSource {
    fn from(p: PathBuf) -> Self {
        SplitSource::Karpathy(p)
    }
}

/// The three split lists of [`SplitSource::Lists`], relative to the dataset root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitLists {
    /// Training images, e.g. `Flickr_8k.trainImages.txt`.
    pub train: PathBuf,
    /// Validation images, e.g. `Flickr_8k.devImages.txt`.
    pub val: PathBuf,
    /// Test images, e.g. `Flickr_8k.testImages.txt`.
    pub test: PathBuf,
}

impl SplitLists {
    /// The split lists of the original Flickr8k distribution (`Flickr8k_text.zip`).
    pub fn flickr8k() -> Self {
        SplitLists {
            train: "Flickr_8k.trainImages.txt".into(),
            val: "Flickr_8k.devImages.txt".into(),
            test: "Flickr_8k.testImages.txt".into(),
        }
    }
}

/// Where and how to read a dataset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset format: `synth`, `flickr8k`, `flickr30k`, `karpathy` or `coco`.
    pub kind: DatasetKind,
    /// Dataset root directory; other paths are relative to it.
    pub root: PathBuf,
    /// Captions file, or a list of files (`["annotations/captions_train2014.json",
    /// "annotations/captions_val2014.json"]`). Defaults: synth `captions.txt`; flickr8k
    /// `captions.txt`, else `Flickr8k.token.txt`; flickr30k `results_20130124.token`, else
    /// `results.csv`, else `flickr30k_images/results.csv`; coco
    /// `annotations/captions_train2014.json`. A name ending in `.token` or `.token.txt` is read
    /// as `name.jpg#N<TAB>caption` lines, any other as CSV with an `image,caption` header (or
    /// the Kaggle Flickr30k `image_name| comment_number| comment`).
    #[serde(default)]
    pub captions: Option<CaptionFiles>,
    /// The split: a Karpathy split JSON (`splits = "dataset_coco.json"`; `restval` → train), or
    /// three lists of file names (`splits = { train = "…", val = "…", test = "…" }`). Images
    /// with captions but in no split are dropped with a warning. Synth: default `splits.json`,
    /// every image must be listed. Karpathy: required (a JSON). Flickr8k: default the three
    /// `Flickr_8k.*Images.txt` lists when all are in the root. Otherwise without it: the last
    /// `min(1000, n/8)` images by file name are test, as many before them val, the rest train.
    #[serde(default)]
    pub splits: Option<SplitSource>,
    /// Images folder. Default: the first existing of `images/`, `Images/`,
    /// `Flicker8k_Dataset/`, `Flickr8k_Dataset/`, `flickr30k_images/flickr30k_images/`,
    /// `flickr30k_images/` (karpathy and coco fall back to the root). Karpathy entries add their
    /// `filepath`; the images of a coco `captions_<name>.json` are in `<images_dir>/<name>/`
    /// (e.g. `train2014/`) when that folder exists, else in the images folder itself.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
