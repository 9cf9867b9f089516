//! The one code path that reads any supported dataset from its files, as a [`DatasetConfig`]
//! describes it: [`check_dataset`] collects every problem, [`load_dataset`] fails when there is
//! any error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::check::{examples, Problem, Problems};
use crate::coco::collect_coco_captions;
use crate::config::{DatasetConfig, DatasetKind, SplitLists, SplitSource};
use crate::dataset::{assign_default_splits, CaptionDataset, ImageRecord, Split};
use crate::error::DataError;
use crate::flickr8k::{group_caption_rows, read_rows_checked, read_split_list, resolve_images_dir};
use crate::karpathy::{collect_karpathy, collect_karpathy_split};

/// Loads the dataset described by `cfg`, checking that every image file exists and that no
/// JPEG is truncated ([`crate::image::check_complete`]). It reads exactly as
/// [`check_dataset`] does and fails when that finds any error: with that error, or with
/// [`DataError::Problems`] listing them; warnings are logged.
///
/// * `synth`: `captions.txt` (Kaggle CSV) + `splits.json` (Karpathy) + `images/`; every image
///   must appear in the split file.
/// * `flickr8k` / `flickr30k`: Kaggle CSV or token file + images folder (see
///   [`DatasetConfig::captions`]); with a split, images in no split are dropped (a warning).
/// * `karpathy`: captions, splits and file names from the split JSON (`restval` → train).
/// * `coco`: one or more annotation JSONs, each with its own images folder; split as for
///   flickr8k (a Karpathy file is matched by `cocoid`).
///
/// A root that does not exist gives [`DataError::MissingRoot`], which tells the user to run
/// `caplab data synth --out DIR` or read README's "Datasets" section.
pub fn load_dataset(cfg: &DatasetConfig) -> Result<CaptionDataset, DataError> {
    let mut problems = Problems::default();
    let ds = read_dataset(cfg, &mut problems);
    let ds = problems.into_result(ds)?.ok_or_else(|| {
        DataError::Config(format!("dataset {} could not be read", cfg.root.display()))
    })?;
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

/// Reads the dataset as [`load_dataset`] does but collects every problem instead of stopping:
/// missing, empty or truncated images, images listed twice, images with captions in no split,
/// empty captions and malformed lines or entries, each naming its file and line or entry.
///
/// The dataset holds what could be read (without the bad images and lines); it is `None` only
/// when nothing could be (no root, an unreadable or unparsable file).
pub fn check_dataset(cfg: &DatasetConfig) -> (Option<CaptionDataset>, Vec<Problem>) {
    let mut problems = Problems::default();
    let ds = read_dataset(cfg, &mut problems);
    (ds, problems.into_vec())
}

/// An image not yet checked on disk, with the file and entry it comes from (for messages).
struct Candidate {
    record: ImageRecord,
    file: PathBuf,
    location: String,
}

fn read_dataset(cfg: &DatasetConfig, p: &mut Problems) -> Option<CaptionDataset> {
    let root = &cfg.root;
    if !root.exists() {
        p.error(DataError::MissingRoot { root: root.clone() });
        return None;
    }
    if !root.is_dir() {
        p.error(DataError::Config(format!(
            "dataset root {} is not a directory",
            root.display()
        )));
        return None;
    }
    let errors_before = p.error_count();
    let t0 = std::time::Instant::now();
    let (name, candidates) = match cfg.kind {
        DatasetKind::Synth => read_synth(cfg, p),
        DatasetKind::Flickr8k | DatasetKind::Flickr30k => read_flickr(cfg, p),
        DatasetKind::Karpathy => read_karpathy_kind(cfg, p),
        DatasetKind::Coco => read_coco(cfg, p),
    }?;
    if candidates.is_empty() && p.error_count() > errors_before {
        return None;
    }
    tracing::debug!(
        images = candidates.len(),
        seconds = t0.elapsed().as_secs_f64(),
        "annotation files read"
    );
    let t0 = std::time::Instant::now();
    let mut images = check_image_files(candidates, p);
    images.sort_by(|a, b| a.id.cmp(&b.id));
    tracing::debug!(
        images = images.len(),
        seconds = t0.elapsed().as_secs_f64(),
        "image files checked"
    );
    Some(CaptionDataset {
        name,
        root: root.clone(),
        images,
    })
}

/// Checks every image on disk in parallel (exists, not empty, JPEG complete); the bad ones are
/// reported with the file and entry that list them and left out.
fn check_image_files(candidates: Vec<Candidate>, p: &mut Problems) -> Vec<ImageRecord> {
    let verdicts: Vec<Option<DataError>> = candidates
        .par_iter()
        .map(|c| {
            let path = &c.record.path;
            // One open per image: a missing file shows as NotFound (no separate stat).
            match crate::image::check_complete(path) {
                Ok(()) => None,
                Err(DataError::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::NotFound =>
                {
                    Some(DataError::record(
                        &c.file,
                        c.location.clone(),
                        format!(
                            "image {} is listed but {} does not exist",
                            c.record.id,
                            path.display()
                        ),
                    ))
                }
                Err(e) => Some(e),
            }
        })
        .collect();
    let mut images = Vec::with_capacity(candidates.len());
    for (c, verdict) in candidates.into_iter().zip(verdicts) {
        match verdict {
            Some(e) => p.error(e),
            None => images.push(c.record),
        }
    }
    images
}

/// The captions files of `cfg`, or the first of `defaults` that exists (else the first).
fn caption_paths(cfg: &DatasetConfig, defaults: &[&str]) -> Vec<PathBuf> {
    match &cfg.captions {
        Some(files) => files.paths().iter().map(|f| cfg.root.join(f)).collect(),
        None => {
            let found = defaults
                .iter()
                .map(|d| cfg.root.join(d))
                .find(|p| p.is_file());
            vec![found.unwrap_or_else(|| cfg.root.join(defaults[0]))]
        }
    }
}

/// Reads captions files of either Flickr layout and groups them by image (paths not checked).
fn read_grouped(files: &[PathBuf], images_dir: &Path, p: &mut Problems) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for file in files {
        let Some(rows) = read_rows_checked(file, p) else {
            continue;
        };
        for (record, line) in group_caption_rows(rows, images_dir) {
            if let Some(&i) = by_id.get(&record.id) {
                out[i].record.captions.extend(record.captions);
                continue;
            }
            by_id.insert(record.id.clone(), out.len());
            out.push(Candidate {
                record,
                file: file.clone(),
                location: format!("line {line}"),
            });
        }
    }
    out
}

fn read_synth(cfg: &DatasetConfig, p: &mut Problems) -> Option<(String, Vec<Candidate>)> {
    let files = caption_paths(cfg, &["captions.txt"]);
    let images_dir = cfg
        .root
        .join(cfg.images_dir.as_deref().unwrap_or(Path::new("images")));
    let candidates = read_grouped(&files, &images_dir, p);
    let source = cfg
        .splits
        .clone()
        .unwrap_or_else(|| SplitSource::Karpathy("splits.json".into()));
    let table = SplitTable::read(&cfg.root, &source, p)?;
    let name = non_empty(&table.dataset, "shapes");
    let candidates = table.apply(candidates, true, p);
    Some((name, truncate(candidates, cfg.max_images)))
}

fn read_flickr(cfg: &DatasetConfig, p: &mut Problems) -> Option<(String, Vec<Candidate>)> {
    let defaults: &[&str] = if cfg.kind == DatasetKind::Flickr30k {
        &[
            "results_20130124.token",
            "results.csv",
            "flickr30k_images/results.csv",
        ]
    } else {
        &["captions.txt", "Flickr8k.token.txt"]
    };
    let files = caption_paths(cfg, defaults);
    let images_dir = resolve_images_dir(&cfg.root, cfg.images_dir.as_deref());
    let candidates = read_grouped(&files, &images_dir, p);
    let source = cfg.splits.clone().or_else(|| {
        let lists = SplitLists::flickr8k();
        let all = [&lists.train, &lists.val, &lists.test]
            .iter()
            .all(|f| cfg.root.join(f).is_file());
        (cfg.kind == DatasetKind::Flickr8k && all).then_some(SplitSource::Lists(lists))
    });
    Some((
        cfg.kind.as_str().to_string(),
        split_optional(candidates, cfg, source.as_ref(), p)?,
    ))
}

fn read_karpathy_kind(cfg: &DatasetConfig, p: &mut Problems) -> Option<(String, Vec<Candidate>)> {
    let splits_path = match &cfg.splits {
        Some(SplitSource::Karpathy(path)) => cfg.root.join(path),
        _ => {
            p.error(DataError::Config(
                "kind = \"karpathy\" needs `splits`, a Karpathy JSON (e.g. dataset_flickr8k.json)"
                    .into(),
            ));
            return None;
        }
    };
    let file = collect_karpathy(&splits_path, p)?;
    let images_dir = default_images_dir(&cfg.root, cfg.images_dir.as_deref());
    let mut candidates = Vec::with_capacity(file.images.len());
    for (i, im) in file.images.iter().enumerate() {
        candidates.push(Candidate {
            record: ImageRecord {
                id: im.filename.clone(),
                path: images_dir.join(im.relative_path()),
                captions: im
                    .sentences
                    .iter()
                    .map(|s| s.raw.trim().to_string())
                    .collect(),
                split: im.parsed_split().unwrap_or(Split::Train),
                coco_id: im.cocoid,
            },
            file: splits_path.clone(),
            location: format!("images[{i}] ({})", im.filename),
        });
    }
    Some((
        non_empty(&file.dataset, "karpathy"),
        truncate(candidates, cfg.max_images),
    ))
}

/// The images folder of a COCO annotation file `captions_<name>.json`: `<base>/<name>/` when it
/// is a folder, else `base`.
fn coco_images_dir(base: &Path, annotation: &Path) -> PathBuf {
    let stem = annotation
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(name) = stem.strip_prefix("captions_").filter(|n| !n.is_empty()) {
        let dir = base.join(name);
        if dir.is_dir() {
            return dir;
        }
    }
    base.to_path_buf()
}

fn read_coco(cfg: &DatasetConfig, p: &mut Problems) -> Option<(String, Vec<Candidate>)> {
    let files = caption_paths(cfg, &["annotations/captions_train2014.json"]);
    let base = default_images_dir(&cfg.root, cfg.images_dir.as_deref());
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut by_id: HashMap<u64, usize> = HashMap::new();
    for ann in &files {
        let images_dir = coco_images_dir(&base, ann);
        for im in collect_coco_captions(ann, p) {
            let location = format!("image id {} ({})", im.id, im.file_name);
            let first = by_id
                .get(&im.id)
                .or_else(|| by_name.get(&im.file_name))
                .map(|&i| &candidates[i]);
            if let Some(first) = first {
                p.error(DataError::record(
                    ann,
                    location,
                    format!(
                        "duplicate image: also {} in {}",
                        first.location,
                        first.file.display()
                    ),
                ));
                continue;
            }
            by_id.insert(im.id, candidates.len());
            by_name.insert(im.file_name.clone(), candidates.len());
            candidates.push(Candidate {
                record: ImageRecord {
                    path: images_dir.join(&im.file_name),
                    id: im.file_name,
                    captions: im.captions,
                    split: Split::Train,
                    coco_id: Some(im.id),
                },
                file: ann.clone(),
                location,
            });
        }
    }
    Some((
        "coco".to_string(),
        split_optional(candidates, cfg, cfg.splits.as_ref(), p)?,
    ))
}

fn non_empty(s: &str, default: &str) -> String {
    if s.is_empty() { default } else { s }.to_string()
}

fn truncate(mut candidates: Vec<Candidate>, max: Option<usize>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    if let Some(max) = max {
        candidates.truncate(max);
    }
    candidates
}

fn default_images_dir(root: &Path, images_dir: Option<&Path>) -> PathBuf {
    let dir = resolve_images_dir(root, images_dir);
    if images_dir.is_none() && !dir.is_dir() {
        root.to_path_buf()
    } else {
        dir
    }
}

/// Applies `source` if set, else truncates and applies the default split rule.
fn split_optional(
    candidates: Vec<Candidate>,
    cfg: &DatasetConfig,
    source: Option<&SplitSource>,
    p: &mut Problems,
) -> Option<Vec<Candidate>> {
    match source {
        Some(source) => {
            let table = SplitTable::read(&cfg.root, source, p)?;
            Some(truncate(table.apply(candidates, false, p), cfg.max_images))
        }
        None => {
            let candidates = truncate(candidates, cfg.max_images);
            let mut records: Vec<ImageRecord> = Vec::with_capacity(candidates.len());
            let mut origins = Vec::with_capacity(candidates.len());
            for c in candidates {
                records.push(c.record);
                origins.push((c.file, c.location));
            }
            assign_default_splits(&mut records);
            // `truncate` sorted by id already, so the order is unchanged.
            Some(
                records
                    .into_iter()
                    .zip(origins)
                    .map(|(record, (file, location))| Candidate {
                        record,
                        file,
                        location,
                    })
                    .collect(),
            )
        }
    }
}

/// One image of a split source.
struct SplitEntry {
    name: String,
    split: Split,
    coco_id: Option<u64>,
}

/// A split source read into lookups by file name and by COCO id.
struct SplitTable {
    /// The dataset name of a Karpathy file (empty for lists).
    dataset: String,
    /// The file named in messages about the split as a whole.
    file: PathBuf,
    entries: Vec<SplitEntry>,
    by_name: HashMap<String, usize>,
    by_coco: HashMap<u64, usize>,
}

impl SplitTable {
    fn read(root: &Path, source: &SplitSource, p: &mut Problems) -> Option<SplitTable> {
        let mut table = SplitTable {
            dataset: String::new(),
            file: PathBuf::new(),
            entries: Vec::new(),
            by_name: HashMap::new(),
            by_coco: HashMap::new(),
        };
        match source {
            SplitSource::Karpathy(path) => {
                let path = root.join(path);
                let file = collect_karpathy_split(&path, p)?;
                table.dataset = file.dataset;
                table.file = path;
                for im in file.images {
                    table.add(SplitEntry {
                        split: im.parsed_split().unwrap_or(Split::Train),
                        name: im.filename,
                        coco_id: im.cocoid,
                    });
                }
            }
            SplitSource::Lists(lists) => {
                table.file = root.join(&lists.train);
                // Where each name was first listed, to name both places of a duplicate.
                let mut listed: HashMap<String, (PathBuf, u64)> = HashMap::new();
                for (split, list) in [
                    (Split::Train, &lists.train),
                    (Split::Val, &lists.val),
                    (Split::Test, &lists.test),
                ] {
                    let path = root.join(list);
                    for (name, line) in read_split_list(&path, p) {
                        if let Some((first, first_line)) = listed.get(&name) {
                            p.error(DataError::record(
                                &path,
                                format!("line {line}"),
                                format!(
                                    "image {name} is also listed in {} at line {first_line}",
                                    first.display()
                                ),
                            ));
                            continue;
                        }
                        listed.insert(name.clone(), (path.clone(), line));
                        table.add(SplitEntry {
                            name,
                            split,
                            coco_id: None,
                        });
                    }
                }
            }
        }
        Some(table)
    }

    fn add(&mut self, entry: SplitEntry) {
        let i = self.entries.len();
        self.by_name.entry(entry.name.clone()).or_insert(i);
        if let Some(id) = entry.coco_id {
            self.by_coco.entry(id).or_insert(i);
        }
        self.entries.push(entry);
    }

    /// Sets each image's split, matched by COCO id when both sides have one, else by file
    /// name. An image in no split is an error with `strict`, else it is dropped (one counted
    /// warning); split entries without captions are one counted warning.
    fn apply(&self, candidates: Vec<Candidate>, strict: bool, p: &mut Problems) -> Vec<Candidate> {
        let mut used = vec![false; self.entries.len()];
        let mut kept = Vec::with_capacity(candidates.len());
        let mut dropped = Vec::new();
        for mut c in candidates {
            let hit = c
                .record
                .coco_id
                .and_then(|id| self.by_coco.get(&id))
                .or_else(|| self.by_name.get(&c.record.id));
            match hit {
                Some(&i) => {
                    used[i] = true;
                    c.record.split = self.entries[i].split;
                    kept.push(c);
                }
                None if strict => p.error(DataError::record(
                    &c.file,
                    c.location,
                    format!(
                        "image {} has captions but is not listed in the split file {}",
                        c.record.id,
                        self.file.display()
                    ),
                )),
                None => dropped.push(c.record.id),
            }
        }
        if !dropped.is_empty() {
            p.warning(DataError::parse(
                &self.file,
                format!(
                    "{} image(s) with captions are in no split and were dropped: {}",
                    dropped.len(),
                    examples(&dropped)
                ),
            ));
        }
        let uncaptioned: Vec<String> = self
            .entries
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(e, _)| e.name.clone())
            .collect();
        if !uncaptioned.is_empty() {
            p.warning(DataError::parse(
                &self.file,
                format!(
                    "{} image(s) of the split have no captions (or were left out above): {}",
                    uncaptioned.len(),
                    examples(&uncaptioned)
                ),
            ));
        }
        kept
    }
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
