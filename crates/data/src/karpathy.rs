//! Karpathy split JSON (`dataset_flickr8k.json`, `dataset_flickr30k.json`, `dataset_coco.json`).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::Problems;
use crate::dataset::Split;
use crate::error::DataError;
use crate::fsutil::{parse_json_value, write_atomic};

/// Top level of a Karpathy split file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KarpathyFile {
    /// Dataset name (`flickr8k`, `coco`, `shapes`, …).
    #[serde(default)]
    pub dataset: String,
    /// One entry per image.
    pub images: Vec<KarpathyImage>,
}

/// One image entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KarpathyImage {
    /// Sub-folder of the image (COCO: `train2014` / `val2014`); absent for Flickr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filepath: Option<String>,
    /// Image file name.
    pub filename: String,
    /// Image index within the file.
    #[serde(default)]
    pub imgid: u64,
    /// `train`, `val`, `test` or `restval` (COCO; treated as train).
    pub split: String,
    /// Sentence ids of this image.
    #[serde(default)]
    pub sentids: Vec<u64>,
    /// Reference captions.
    pub sentences: Vec<KarpathySentence>,
    /// COCO image id (COCO only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cocoid: Option<u64>,
}

/// One reference caption.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KarpathySentence {
    /// The caption as written.
    pub raw: String,
    /// Karpathy's tokenisation of `raw`.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Owning image index.
    #[serde(default)]
    pub imgid: u64,
    /// Sentence id.
    #[serde(default)]
    pub sentid: u64,
}

impl KarpathyImage {
    /// The parsed split (`restval` → train); `None` for an unknown name.
    pub fn parsed_split(&self) -> Option<Split> {
        Split::parse_karpathy(&self.split)
    }

    /// Path of the image relative to the images folder (`filepath/filename` or `filename`).
    pub fn relative_path(&self) -> std::path::PathBuf {
        match &self.filepath {
            Some(dir) if !dir.is_empty() => Path::new(dir).join(&self.filename),
            _ => Path::new(&self.filename).to_path_buf(),
        }
    }
}

/// Reads and validates a Karpathy split file.
///
/// Errors name the file and the entry (`images[i] (filename)`): malformed entry, unknown
/// split, no sentences, an empty caption, a file name listed twice (several:
/// [`DataError::Problems`]).
pub fn read_karpathy(path: &Path) -> Result<KarpathyFile, DataError> {
    let mut problems = Problems::default();
    let file = collect_karpathy(path, &mut problems);
    match file {
        Some(file) => problems.into_result(file),
        None => Err(problems
            .into_result(())
            .err()
            .unwrap_or_else(|| DataError::parse(path, "unreadable split file"))),
    }
}

/// An entry's location (`images[i] (filename)`) and the entry, or why it is malformed.
type NamedEntry = (String, Result<KarpathyImage, String>);

/// [`read_karpathy`] collecting every bad entry into `problems` and going on without it;
/// `None` when the file cannot be read or is not a Karpathy file at all.
pub fn collect_karpathy(path: &Path, problems: &mut Problems) -> Option<KarpathyFile> {
    collect(path, true, problems)
}

/// A Karpathy file used as a split only: [`collect_karpathy`] without the sentences (every
/// `sentences` comes back empty and is not checked), which makes reading `dataset_coco.json`
/// (600 000 tokenised sentences) several times cheaper.
pub fn collect_karpathy_split(path: &Path, problems: &mut Problems) -> Option<KarpathyFile> {
    collect(path, false, problems)
}

/// An entry of a split-only read: the sentences are skipped by the parser.
#[derive(Deserialize)]
struct SplitOnlyImage {
    #[serde(default)]
    filepath: Option<String>,
    filename: String,
    #[serde(default)]
    imgid: u64,
    split: String,
    #[serde(default)]
    cocoid: Option<u64>,
}

/// A split-only read of a Karpathy file.
#[derive(Deserialize)]
struct SplitOnlyFile {
    #[serde(default)]
    dataset: String,
    images: Vec<SplitOnlyImage>,
}

fn fast_parse(bytes: &[u8], with_sentences: bool) -> Option<KarpathyFile> {
    if with_sentences {
        return serde_json::from_slice::<KarpathyFile>(bytes).ok();
    }
    let file = serde_json::from_slice::<SplitOnlyFile>(bytes).ok()?;
    Some(KarpathyFile {
        dataset: file.dataset,
        images: file
            .images
            .into_iter()
            .map(|im| KarpathyImage {
                filepath: im.filepath,
                filename: im.filename,
                imgid: im.imgid,
                split: im.split,
                sentids: Vec::new(),
                sentences: Vec::new(),
                cocoid: im.cocoid,
            })
            .collect(),
    })
}

fn collect(path: &Path, with_sentences: bool, problems: &mut Problems) -> Option<KarpathyFile> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            problems.error(DataError::io(path, e));
            return None;
        }
    };
    // Fast path: the whole file in one typed pass; entry by entry only when something is
    // malformed, to name each bad entry.
    let (dataset, entries): (String, Vec<NamedEntry>) = match fast_parse(&bytes, with_sentences) {
        Some(file) => (
            file.dataset,
            file.images
                .into_iter()
                .enumerate()
                .map(|(i, im)| (format!("images[{i}] ({})", im.filename), Ok(im)))
                .collect(),
        ),
        None => {
            let mut value = match parse_json_value(path, &bytes) {
                Ok(v) => v,
                Err(e) => {
                    problems.error(e);
                    return None;
                }
            };
            let dataset = value
                .get("dataset")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string();
            let entries = match value.get_mut("images").map(serde_json::Value::take) {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    problems.error(DataError::parse(
                        path,
                        "not a Karpathy split file: missing `images` array",
                    ));
                    return None;
                }
            };
            let entries = entries
                .into_iter()
                .enumerate()
                .map(|(i, entry)| {
                    let name = entry
                        .get("filename")
                        .and_then(|f| f.as_str())
                        .map(|f| format!("images[{i}] ({f})"))
                        .unwrap_or_else(|| format!("images[{i}]"));
                    (
                        name,
                        serde_json::from_value(entry).map_err(|e| e.to_string()),
                    )
                })
                .collect();
            (dataset, entries)
        }
    };
    let mut images = Vec::with_capacity(entries.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (i, (name, image)) in entries.into_iter().enumerate() {
        let image = match image {
            Ok(im) => im,
            Err(e) => {
                problems.error(DataError::record(path, name, e));
                continue;
            }
        };
        let problem = if image.filename.trim().is_empty() {
            Some("empty `filename`".to_string())
        } else if image.parsed_split().is_none() {
            Some(format!(
                "unknown split {:?} (expected train, val, test or restval)",
                image.split
            ))
        } else if with_sentences && image.sentences.is_empty() {
            Some("image has no sentences".to_string())
        } else if let Some(j) = image
            .sentences
            .iter()
            .position(|s| with_sentences && s.raw.trim().is_empty())
        {
            Some(format!("sentences[{j}] is an empty caption"))
        } else {
            seen.get(&image.filename).map(|first| {
                format!(
                    "duplicate image: {} is also images[{first}]",
                    image.filename
                )
            })
        };
        if let Some(message) = problem {
            problems.error(DataError::record(path, name, message));
            continue;
        }
        seen.insert(image.filename.clone(), i);
        images.push(image);
    }
    Some(KarpathyFile { dataset, images })
}

/// Writes a Karpathy split file (atomic).
pub fn write_karpathy(path: &Path, file: &KarpathyFile) -> Result<(), DataError> {
    let json = serde_json::to_vec(file)
        .map_err(|e| DataError::parse(path, format!("cannot serialise split file: {e}")))?;
    write_atomic(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"dataset":"flickr8k","images":[
      {"filename":"a.jpg","imgid":0,"split":"train","sentids":[0,1],
       "sentences":[{"raw":"A dog.","tokens":["a","dog"],"imgid":0,"sentid":0},
                    {"raw":"Another dog","tokens":["another","dog"],"imgid":0,"sentid":1}]},
      {"filepath":"val2014","filename":"b.jpg","imgid":1,"split":"restval","sentids":[2],"cocoid":42,
       "sentences":[{"raw":"A cat","tokens":["a","cat"],"imgid":1,"sentid":2}]},
      {"filename":"c.jpg","imgid":2,"split":"test","sentids":[3],
       "sentences":[{"raw":"x y","tokens":["x","y"],"imgid":2,"sentid":3}]}]}"#;

    #[test]
    fn reads_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dataset_flickr8k.json");
        std::fs::write(&p, GOOD).unwrap();
        let f = read_karpathy(&p).unwrap();
        assert_eq!(f.dataset, "flickr8k");
        assert_eq!(f.images.len(), 3);
        assert_eq!(f.images[0].sentences[0].raw, "A dog.");
        assert_eq!(f.images[1].parsed_split(), Some(Split::Train));
        assert_eq!(f.images[1].relative_path(), Path::new("val2014/b.jpg"));
        assert_eq!(f.images[2].parsed_split(), Some(Split::Test));
        // round trip
        let q = dir.path().join("out.json");
        write_karpathy(&q, &f).unwrap();
        assert_eq!(read_karpathy(&q).unwrap().images[1].cocoid, Some(42));
    }

    #[test]
    fn errors_name_file_and_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("split.json");
        std::fs::write(&p, GOOD.replace("\"restval\"", "\"dev\"")).unwrap();
        let err = read_karpathy(&p).unwrap_err().to_string();
        assert!(
            err.contains("split.json: images[1] (b.jpg)") && err.contains("dev"),
            "{err}"
        );
        std::fs::write(&p, GOOD.replace("\"x y\"", "\"  \"")).unwrap();
        let err = read_karpathy(&p).unwrap_err().to_string();
        assert!(
            err.contains("images[2] (c.jpg)") && err.contains("empty caption"),
            "{err}"
        );
        std::fs::write(&p, GOOD.replace("\"split\":\"test\",", "")).unwrap();
        let err = read_karpathy(&p).unwrap_err().to_string();
        assert!(err.contains("images[2]") && err.contains("split"), "{err}");
        std::fs::write(&p, "{\"images\": [").unwrap();
        let err = read_karpathy(&p).unwrap_err().to_string();
        assert!(
            err.contains("split.json") && err.contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn split_only_read_skips_sentences_and_keeps_splits_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dataset_coco.json");
        // An empty caption does not matter when the file is only a split.
        std::fs::write(&p, GOOD.replace("\"x y\"", "\"  \"")).unwrap();
        let mut problems = Problems::default();
        let f = collect_karpathy_split(&p, &mut problems).unwrap();
        assert_eq!(problems.error_count(), 0);
        assert_eq!(f.images.len(), 3);
        assert!(f.images.iter().all(|im| im.sentences.is_empty()));
        assert_eq!(f.images[1].cocoid, Some(42));
        assert_eq!(f.images[1].parsed_split(), Some(Split::Train));
        assert_eq!(f.images[1].relative_path(), Path::new("val2014/b.jpg"));
        // The full read reports it; an unknown split is an error for both.
        assert_eq!(
            collect_karpathy(&p, &mut Problems::default()).map(|f| f.images.len()),
            Some(2)
        );
        std::fs::write(&p, GOOD.replace("\"restval\"", "\"dev\"")).unwrap();
        let mut problems = Problems::default();
        let f = collect_karpathy_split(&p, &mut problems).unwrap();
        assert_eq!(f.images.len(), 2);
        let msg = problems.into_result(()).unwrap_err().to_string();
        assert!(
            msg.contains("images[1] (b.jpg)") && msg.contains("dev"),
            "{msg}"
        );
    }
}
