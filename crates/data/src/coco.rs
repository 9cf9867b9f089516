//! COCO captions annotation JSON (`captions_train2014.json` schema).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::check::{examples, Problems};
use crate::error::DataError;
use crate::fsutil::parse_json_value;

/// An image of a COCO annotation file with its captions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CocoImageCaptions {
    /// COCO image id.
    pub id: u64,
    /// Image file name (e.g. `COCO_train2014_000000000009.jpg`).
    pub file_name: String,
    /// Captions in annotation order.
    pub captions: Vec<String>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    #[serde(default)]
    id: Option<u64>,
    caption: String,
}

fn entries(
    path: &Path,
    value: &mut serde_json::Value,
    key: &str,
) -> Result<Vec<serde_json::Value>, DataError> {
    match value.get_mut(key).map(serde_json::Value::take) {
        Some(serde_json::Value::Array(a)) => Ok(a),
        _ => Err(DataError::parse(
            path,
            format!("not a COCO captions file: missing `{key}` array"),
        )),
    }
}

/// The whole file in one typed pass: the fast path, taken when every entry is well formed.
#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
}

/// Each entry, or the message of why it is malformed (at most one file read and parse).
type Entries = (
    Vec<Result<CocoImage, String>>,
    Vec<Result<CocoAnnotation, String>>,
);

fn parse_entries(path: &Path) -> Result<Entries, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if let Ok(file) = serde_json::from_slice::<CocoFile>(&bytes) {
        return Ok((
            file.images.into_iter().map(Ok).collect(),
            file.annotations.into_iter().map(Ok).collect(),
        ));
    }
    // Something is malformed: entry by entry, to name each bad one.
    let mut value = parse_json_value(path, &bytes)?;
    let images = entries(path, &mut value, "images")?;
    let annotations = entries(path, &mut value, "annotations")?;
    Ok((
        images
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .collect(),
        annotations
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .collect(),
    ))
}

/// Reads a COCO captions annotation file; images come back sorted by file name.
///
/// Errors name the file and entry (`images[i]`, `annotations[i] (id N)`): malformed entry,
/// duplicate image id or file name, caption for an unknown image, empty caption (several:
/// [`DataError::Problems`]). Images without any caption are skipped with a warning.
pub fn read_coco_captions(path: &Path) -> Result<Vec<CocoImageCaptions>, DataError> {
    let mut problems = Problems::default();
    let images = collect_coco_captions(path, &mut problems);
    problems.into_result(images)
}

/// [`read_coco_captions`] collecting every bad entry into `problems` and going on without it;
/// images without captions are one counted warning.
pub fn collect_coco_captions(path: &Path, problems: &mut Problems) -> Vec<CocoImageCaptions> {
    let (image_values, ann_values) = match parse_entries(path) {
        Ok(e) => e,
        Err(e) => {
            problems.error(e);
            return Vec::new();
        }
    };
    let mut images: Vec<CocoImageCaptions> = Vec::with_capacity(image_values.len());
    let mut by_id: HashMap<u64, usize> = HashMap::with_capacity(image_values.len());
    let mut by_name: HashMap<String, usize> = HashMap::with_capacity(image_values.len());
    for (i, v) in image_values.into_iter().enumerate() {
        let img = match v {
            Ok(img) => img,
            Err(e) => {
                problems.error(DataError::record(path, format!("images[{i}]"), e));
                continue;
            }
        };
        let loc = format!("images[{i}] ({})", img.file_name);
        if img.file_name.trim().is_empty() {
            problems.error(DataError::record(path, loc, "empty `file_name`"));
            continue;
        }
        if by_id.contains_key(&img.id) {
            problems.error(DataError::record(
                path,
                loc,
                format!("duplicate image id {}", img.id),
            ));
            continue;
        }
        if let Some(&j) = by_name.get(&img.file_name) {
            problems.error(DataError::record(
                path,
                loc,
                format!(
                    "duplicate file_name (also image id {}); ids {} and {} name one file",
                    images[j].id, images[j].id, img.id
                ),
            ));
            continue;
        }
        by_id.insert(img.id, images.len());
        by_name.insert(img.file_name.clone(), images.len());
        images.push(CocoImageCaptions {
            id: img.id,
            file_name: img.file_name,
            captions: Vec::new(),
        });
    }
    for (i, v) in ann_values.into_iter().enumerate() {
        let ann = match v {
            Ok(a) => a,
            Err(e) => {
                problems.error(DataError::record(path, format!("annotations[{i}]"), e));
                continue;
            }
        };
        let loc = match ann.id {
            Some(id) => format!("annotations[{i}] (id {id})"),
            None => format!("annotations[{i}]"),
        };
        let Some(&idx) = by_id.get(&ann.image_id) else {
            problems.error(DataError::record(
                path,
                loc,
                format!("caption refers to unknown image_id {}", ann.image_id),
            ));
            continue;
        };
        let caption = ann.caption.trim();
        if caption.is_empty() {
            problems.error(DataError::record(
                path,
                loc,
                format!("empty caption for image {}", images[idx].file_name),
            ));
            continue;
        }
        images[idx].captions.push(caption.to_string());
    }
    let before = images.len();
    let mut uncaptioned = Vec::new();
    images.retain(|im| {
        if im.captions.is_empty() {
            uncaptioned.push(im.file_name.clone());
        }
        !im.captions.is_empty()
    });
    if images.len() != before {
        problems.warning(DataError::parse(
            path,
            format!(
                "{} image(s) without any caption skipped: {}",
                before - images.len(),
                examples(&uncaptioned)
            ),
        ));
    }
    images.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"info":{},"licenses":[],
      "images":[{"id":9,"file_name":"COCO_9.jpg","width":640,"height":480},
                {"id":3,"file_name":"COCO_3.jpg"},{"id":5,"file_name":"COCO_5.jpg"}],
      "annotations":[{"image_id":9,"id":1,"caption":"A plate of food. "},
                     {"image_id":3,"id":2,"caption":"A bus"},
                     {"image_id":9,"id":3,"caption":"Food, on a plate"}]}"#;

    #[test]
    fn groups_captions_by_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("captions_train2014.json");
        std::fs::write(&p, GOOD).unwrap();
        let imgs = read_coco_captions(&p).unwrap();
        assert_eq!(imgs.len(), 2, "image 5 has no caption and is skipped");
        assert_eq!(imgs[0].file_name, "COCO_3.jpg");
        assert_eq!(
            imgs[1].captions,
            vec!["A plate of food.", "Food, on a plate"]
        );
    }

    #[test]
    fn errors_name_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("caps.json");
        std::fs::write(&p, GOOD.replace("\"image_id\":3", "\"image_id\":4")).unwrap();
        let err = read_coco_captions(&p).unwrap_err().to_string();
        assert!(
            err.contains("caps.json: annotations[1] (id 2)") && err.contains("4"),
            "{err}"
        );
        std::fs::write(&p, GOOD.replace("A bus", " ")).unwrap();
        let err = read_coco_captions(&p).unwrap_err().to_string();
        assert!(
            err.contains("annotations[1]") && err.contains("empty caption"),
            "{err}"
        );
        std::fs::write(&p, GOOD.replace("\"file_name\":\"COCO_3.jpg\"", "\"f\":1")).unwrap();
        let err = read_coco_captions(&p).unwrap_err().to_string();
        assert!(
            err.contains("images[1]") && err.contains("file_name"),
            "{err}"
        );
    }
}
