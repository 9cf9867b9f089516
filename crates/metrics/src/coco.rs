//! Loaders for COCO caption annotation files and COCO results files, with errors that name the
//! file and the offending entry. `captions.txt` (the Kaggle Flickr8k CSV) is not read here: its
//! one reader is caplab-data's `flickr8k::parse_caption_rows`, which `caplab score` uses.

use crate::error::MetricsError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn format_err(path: &Path, msg: impl Into<String>) -> MetricsError {
    MetricsError::Format {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read(path: &Path) -> Result<String, MetricsError> {
    let text = std::fs::read_to_string(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Err(format_err(path, "file is empty"));
    }
    let mut text = text;
    let bom = text.len() - text.trim_start_matches('\u{feff}').len();
    text.drain(..bom);
    Ok(text)
}

/// An entry as the typed parse reads it: an integer or string image id and a string caption.
/// Files it does not accept (other id types, errors) go through [`serde_json::Value`], which
/// gives the same entries or names the offending entry.
#[derive(serde::Deserialize)]
struct Entry {
    image_id: Id,
    caption: String,
}

/// An image id given as an integer or a string, as its string key.
struct Id(String);

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            // serde_json's `Number` prints integers as their decimal digits.
            fn visit_u64<E>(self, n: u64) -> Result<Id, E> {
                Ok(Id(n.to_string()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Id, E> {
                Ok(Id(n.to_string()))
            }
            fn visit_str<E>(self, s: &str) -> Result<Id, E> {
                Ok(Id(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Id, E> {
                Ok(Id(s))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(serde::Deserialize)]
struct Annotations {
    annotations: Vec<Entry>,
}

fn pairs(entries: Vec<Entry>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|e| (e.image_id.0, e.caption))
        .collect()
}

fn parse_json(path: &Path, text: &str) -> Result<Value, MetricsError> {
    serde_json::from_str(text).map_err(|e| format_err(path, format!("not valid JSON: {e}")))
}

/// An image id (number or string) as a string key; `what` names the entry in errors (built
/// only for an error).
fn image_id(path: &Path, v: &Value, what: impl Fn() -> String) -> Result<String, MetricsError> {
    match v.get("image_id") {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format_err(
            path,
            format!(
                "{}: \"image_id\" must be a number or a string, got {other}",
                what()
            ),
        )),
        None => Err(format_err(
            path,
            format!("{}: missing \"image_id\"", what()),
        )),
    }
}

/// The caption of an entry, moved out of it.
fn caption(path: &Path, v: &mut Value, what: impl Fn() -> String) -> Result<String, MetricsError> {
    match v.get_mut("caption") {
        Some(Value::String(s)) => Ok(std::mem::take(s)),
        Some(other) => Err(format_err(
            path,
            format!("{}: \"caption\" must be a string, got {other}", what()),
        )),
        None => Err(format_err(path, format!("{}: missing \"caption\"", what()))),
    }
}

/// Loads reference captions keyed by image id from a COCO annotation JSON file
/// (`{"annotations":[{"image_id","caption"}]}`).
pub fn load_refs(path: &Path) -> Result<BTreeMap<String, Vec<String>>, MetricsError> {
    let text = read(path)?;
    parse_coco_refs(path, &text)
}

/// Parses a COCO caption annotation file.
pub fn parse_coco_refs(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, Vec<String>>, MetricsError> {
    let entries = match serde_json::from_str::<Annotations>(text) {
        Ok(a) => pairs(a.annotations),
        Err(_) => {
            let mut v = parse_json(path, text)?;
            let anns = v
                .get_mut("annotations")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| {
                    format_err(path, "expected an object with an \"annotations\" array")
                })?;
            let mut entries = Vec::with_capacity(anns.len());
            for (i, a) in anns.iter_mut().enumerate() {
                let what = || format!("annotations[{i}]");
                let id = image_id(path, a, what)?;
                entries.push((id, caption(path, a, what)?));
            }
            entries
        }
    };
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, cap) in entries {
        out.entry(id).or_default().push(cap);
    }
    if out.is_empty() {
        return Err(format_err(path, "no annotations"));
    }
    Ok(out)
}

/// Loads a COCO results file (`[{"image_id","caption"}]`); one caption per image.
pub fn load_results(path: &Path) -> Result<BTreeMap<String, String>, MetricsError> {
    let text = read(path)?;
    parse_results(path, &text)
}

/// Parses a COCO results file.
pub fn parse_results(path: &Path, text: &str) -> Result<BTreeMap<String, String>, MetricsError> {
    let entries = match serde_json::from_str::<Vec<Entry>>(text) {
        Ok(e) => pairs(e),
        Err(_) => {
            let mut v = parse_json(path, text)?;
            let arr = v.as_array_mut().ok_or_else(|| {
                format_err(path, "expected a JSON array of {\"image_id\", \"caption\"}")
            })?;
            let mut entries = Vec::with_capacity(arr.len());
            for (i, r) in arr.iter_mut().enumerate() {
                let what = || format!("entry [{i}]");
                let id = image_id(path, r, what)?;
                entries.push((id, caption(path, r, what)?));
            }
            entries
        }
    };
    let mut out = BTreeMap::new();
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (id, cap)) in entries.into_iter().enumerate() {
        if let Some(j) = first.get(&id) {
            return Err(format_err(
                path,
                format!("entry [{i}]: second result for image_id {id} (first at entry [{j}])"),
            ));
        }
        first.insert(id.clone(), i);
        out.insert(id, cap);
    }
    if out.is_empty() {
        return Err(format_err(path, "no results"));
    }
    Ok(out)
}

/// Which reference images a results file covers. pycocoevalcap scores exactly the images of
/// the results file (`loadRes` asserts results ⊆ annotations; COCOEvalCap evaluates
/// `cocoRes.getImgIds()`), so the uncovered references are left out, CIDEr-D's document
/// frequencies included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Reference images that have a result: the images scored.
    pub scored: usize,
    /// Reference images without a result, in id order.
    pub missing: Vec<String>,
}

impl Coverage {
    /// Number of reference images.
    pub fn refs(&self) -> usize {
        self.scored + self.missing.len()
    }
}

/// The coverage of `results` over `refs`. A result for an image that has no reference
/// captions is an error naming the results file and the id, as in pycocoevalcap.
pub fn coverage(
    refs: &BTreeMap<String, Vec<String>>,
    refs_path: &Path,
    results: &BTreeMap<String, String>,
    results_path: &Path,
) -> Result<Coverage, MetricsError> {
    if let Some(id) = results.keys().find(|id| !refs.contains_key(*id)) {
        return Err(format_err(
            results_path,
            format!(
                "result for image_id {id} has no reference captions in {}",
                refs_path.display()
            ),
        ));
    }
    let missing: Vec<String> = refs
        .keys()
        .filter(|id| !results.contains_key(*id))
        .cloned()
        .collect();
    Ok(Coverage {
        scored: refs.len() - missing.len(),
        missing,
    })
}

/// Checks that results and references cover the same images; errors name the file and id
/// (`caplab score --require-all`).
pub fn check_coverage(
    refs: &BTreeMap<String, Vec<String>>,
    refs_path: &Path,
    results: &BTreeMap<String, String>,
    results_path: &Path,
) -> Result<(), MetricsError> {
    let cov = coverage(refs, refs_path, results, results_path)?;
    if let Some(first) = cov.missing.first() {
        return Err(format_err(
            results_path,
            format!(
                "no result for image_id {first} of {} ({} image(s) missing)",
                refs_path.display(),
                cov.missing.len()
            ),
        ));
    }
    Ok(())
}

/// The references of the images that `results` covers: what pycocoevalcap scores.
pub fn refs_of_results(
    refs: &BTreeMap<String, Vec<String>>,
    results: &BTreeMap<String, String>,
) -> BTreeMap<String, Vec<String>> {
    refs.iter()
        .filter(|(id, _)| results.contains_key(*id))
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coco_and_results() {
        let p = Path::new("refs.json");
        let r = parse_coco_refs(
            p,
            r#"{"images":[{"id":1}],"annotations":[{"image_id":1,"caption":"a b"},{"image_id":1,"caption":"c"}]}"#,
        )
        .unwrap();
        assert_eq!(r["1"], vec!["a b", "c"]);
        let res =
            parse_results(Path::new("res.json"), r#"[{"image_id":1,"caption":"a"}]"#).unwrap();
        assert_eq!(res["1"], "a");
    }

    #[test]
    fn typed_parse_and_value_fallback_give_the_same_ids() {
        let p = Path::new("refs.json");
        // Integer and string ids take the typed parse; a float id or a duplicate key sends the
        // whole file through `Value`, which keys ids as serde_json prints them.
        let typed = r#"{"annotations":[{"image_id":-3,"caption":"a"},{"image_id":"x","caption":"b"},{"image_id":7,"id":1,"caption":"c"}]}"#;
        let r = parse_coco_refs(p, typed).unwrap();
        assert_eq!(r["-3"], vec!["a"]);
        assert_eq!(r["x"], vec!["b"]);
        assert_eq!(r["7"], vec!["c"]);
        let fallback = r#"{"annotations":[{"image_id":-3,"caption":"a"},{"image_id":1.5,"caption":"b"},{"image_id":7,"caption":"z","caption":"c"}]}"#;
        let r = parse_coco_refs(p, fallback).unwrap();
        assert_eq!(r["-3"], vec!["a"]);
        assert_eq!(r["1.5"], vec!["b"]);
        assert_eq!(r["7"], vec!["c"]);
        let res = parse_results(
            Path::new("res.json"),
            r#"[{"image_id":2.5,"caption":"a"},{"image_id":3,"caption":"b"}]"#,
        )
        .unwrap();
        assert_eq!(res["2.5"], "a");
        assert_eq!(res["3"], "b");
    }

    #[test]
    fn errors_name_file_and_entry() {
        let p = Path::new("res.json");
        let e = parse_results(p, r#"[{"image_id":1,"caption":"a"},{"image_id":2}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("res.json") && e.contains("entry [1]") && e.contains("caption"),
            "{e}"
        );
        let e = parse_results(p, "not json").unwrap_err().to_string();
        assert!(e.contains("res.json") && e.contains("JSON"), "{e}");
        let e = parse_results(
            p,
            r#"[{"image_id":1,"caption":"a"},{"image_id":1,"caption":"b"}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("entry [1]") && e.contains("entry [0]"), "{e}");
        let refs: BTreeMap<String, Vec<String>> = [("1".to_string(), vec!["a".to_string()])].into();
        let res: BTreeMap<String, String> = [("7".to_string(), "a".to_string())].into();
        let e = check_coverage(&refs, Path::new("refs.json"), &res, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("image_id 7") && e.contains("res.json"), "{e}");
        let res: BTreeMap<String, String> = BTreeMap::new();
        let e = check_coverage(&refs, Path::new("refs.json"), &res, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no result for image_id 1"), "{e}");
    }

    #[test]
    fn partial_results_score_the_covered_images() {
        let refs: BTreeMap<String, Vec<String>> = ["1", "2", "3"]
            .iter()
            .map(|id| (id.to_string(), vec![format!("ref {id}")]))
            .collect();
        let res: BTreeMap<String, String> = [("2".to_string(), "a".to_string())].into();
        let (rp, sp) = (Path::new("refs.json"), Path::new("res.json"));
        let cov = coverage(&refs, rp, &res, sp).unwrap();
        assert_eq!(cov.scored, 1);
        assert_eq!(cov.missing, ["1", "3"]);
        assert_eq!(cov.refs(), 3);
        let sub = refs_of_results(&refs, &res);
        assert_eq!(sub.keys().collect::<Vec<_>>(), ["2"]);
        let e = check_coverage(&refs, rp, &res, sp).unwrap_err().to_string();
        assert!(
            e.contains("no result for image_id 1") && e.contains("2 image(s)"),
            "{e}"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("empty.json");
        std::fs::write(&f, "").unwrap();
        let e = load_results(&f).unwrap_err().to_string();
        assert!(e.contains("empty.json") && e.contains("empty"), "{e}");
    }
}
