//! In-memory representation of a captioning dataset: images, their captions and splits.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images (Karpathy's `restval` is folded into this split).
    Train,
    /// Validation images.
    Val,
    /// Test images.
    Test,
}

impl Split {
    /// All splits in canonical order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The lower-case name used in split files (`train`, `val`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses a Karpathy split name; `restval` maps to [`Split::Train`].
    pub fn parse_karpathy(name: &str) -> Option<Split> {
        match name {
            "train" | "restval" => Some(Split::Train),
            "val" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Split {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::parse_karpathy(s).ok_or_else(|| {
            DataError::Config(format!("unknown split {s:?} (expected train, val or test)"))
        })
    }
}

/// One image with all of its reference captions.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    /// The image's file name, e.g. `000123.jpg`; unique within a dataset.
    pub id: String,
    /// Full path of the image file.
    pub path: PathBuf,
    /// Reference captions, raw (untokenised), in file order.
    pub captions: Vec<String>,
    /// The split the image belongs to.
    pub split: Split,
    /// The integer COCO image id: set for images of COCO annotation files and of Karpathy
    /// entries with a `cocoid`; `None` otherwise.
    pub coco_id: Option<u64>,
}

/// A loaded captioning dataset.
#[derive(Clone, Debug)]
pub struct CaptionDataset {
    /// Dataset name (e.g. `shapes`, `flickr8k`, `coco`).
    pub name: String,
    /// Dataset root directory.
    pub root: PathBuf,
    /// All images, sorted by id.
    pub images: Vec<ImageRecord>,
}

impl CaptionDataset {
    /// Images belonging to split `s`, in dataset order.
    pub fn split(&self, s: Split) -> Vec<&ImageRecord> {
        self.images.iter().filter(|r| r.split == s).collect()
    }

    /// Number of images in split `s`.
    pub fn split_len(&self, s: Split) -> usize {
        self.images.iter().filter(|r| r.split == s).count()
    }

    /// All captions of the train split (what the vocabulary must be built from).
    pub fn train_captions(&self) -> impl Iterator<Item = &str> {
        self.images
            .iter()
            .filter(|r| r.split == Split::Train)
            .flat_map(|r| r.captions.iter().map(String::as_str))
    }

    /// Total number of captions over all splits.
    pub fn num_captions(&self) -> usize {
        self.images.iter().map(|r| r.captions.len()).sum()
    }
}

/// Default split sizes for `n` images without a split file: `(train, val, test)`.
///
/// `val = test = min(1000, n / 8)`, the rest is train: 8091 Kaggle Flickr8k images give
/// 6091/1000/1000, 40 images give 30/5/5.
pub fn default_split_sizes(n: usize) -> (usize, usize, usize) {
    let k = (n / 8).min(1000);
    (n - 2 * k, k, k)
}

/// Assigns the default split: after sorting by file name, the last `test` images are test,
/// the `val` images before them are val and the rest train (see [`default_split_sizes`]).
pub fn assign_default_splits(records: &mut [ImageRecord]) {
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let (train, val, _) = default_split_sizes(records.len());
    for (i, r) in records.iter_mut().enumerate() {
        r.split = if i < train {
            Split::Train
        } else if i < train + val {
            Split::Val
        } else {
            Split::Test
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, split: Split, caps: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            path: PathBuf::from(id),
            captions: caps.iter().map(|s| s.to_string()).collect(),
            split,
            coco_id: None,
        }
    }

    #[test]
    fn split_filters_and_train_captions() {
        let ds = CaptionDataset {
            name: "t".into(),
            root: PathBuf::from("."),
            images: vec![
                rec("a.jpg", Split::Train, &["x y", "z"]),
                rec("b.jpg", Split::Val, &["v"]),
                rec("c.jpg", Split::Train, &["w"]),
            ],
        };
        assert_eq!(ds.split(Split::Train).len(), 2);
        assert_eq!(ds.split_len(Split::Val), 1);
        assert_eq!(ds.split(Split::Test).len(), 0);
        assert_eq!(
            ds.train_captions().collect::<Vec<_>>(),
            vec!["x y", "z", "w"]
        );
        assert_eq!(ds.num_captions(), 4);
    }

    #[test]
    fn default_split_rule() {
        assert_eq!(default_split_sizes(8091), (6091, 1000, 1000));
        assert_eq!(default_split_sizes(40), (30, 5, 5));
        assert_eq!(default_split_sizes(3), (3, 0, 0));
        let mut recs: Vec<_> = (0..16)
            .rev()
            .map(|i| rec(&format!("{i:02}"), Split::Test, &[]))
            .collect();
        assign_default_splits(&mut recs);
        assert_eq!(recs[0].id, "00");
        assert_eq!(recs[11].split, Split::Train);
        assert_eq!(recs[12].split, Split::Val);
        assert_eq!(recs[13].split, Split::Val);
        assert_eq!(recs[14].split, Split::Test);
    }

    #[test]
    fn split_serde_and_parse() {
        assert_eq!(serde_json::to_string(&Split::Val).unwrap(), "\"val\"");
        assert_eq!(Split::parse_karpathy("restval"), Some(Split::Train));
        assert!("bogus".parse::<Split>().is_err());
    }
}
