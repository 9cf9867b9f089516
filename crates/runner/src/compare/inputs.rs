//! What `caplab compare` reads: its inputs found on disk and loaded.
//!
//! An input is a run directory or an evaluation directory (`RUN/evals/<id>/`), both holding
//! `report.json`; a `report.json` file; a sweep directory, whose `manifest.json`
//! ([`crate::sweep::plan::Manifest`]) lists its trials (trials without a `report.json` —
//! running, failed, pending — are skipped with a warning); or any other directory whose
//! immediate subdirectories hold `report.json`. Each becomes a [`RunData`]: its report, its
//! epochs (`history.jsonl`) and a unique label. The test captions (`captions.json`) and
//! references (`refs.json`) a run wrote are read here too, for the bootstrap and the gallery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::history::{EpochRecord, History};
use crate::report::Report;
use crate::sweep::plan::{Manifest, Status};

/// A run (or evaluation) being compared.
#[derive(Clone, Debug)]
pub struct RunData {
    /// Its directory.
    pub dir: PathBuf,
    /// Short unique label.
    pub label: String,
    /// Its report.
    pub report: Report,
    /// Its epochs (from `history.jsonl`; an evaluation's are its run's).
    pub history: Vec<EpochRecord>,
}

impl RunData {
    /// The seed (`experiment.seed`).
    pub fn seed(&self) -> u64 {
        self.report.seed
    }

    /// The model's test metrics.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        self.report
            .test
            .first()
            .map(|t| t.metrics.clone())
            .unwrap_or_default()
    }

    /// A spec value as written in report.json, string quotes removed.
    pub fn spec_value(&self, key: &str) -> Option<String> {
        self.report.spec.get(key).map(|v| unquote(v))
    }
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

/// An expanded input: a directory with `report.json`, and a label when the sweep names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The run (or evaluation) directory.
    pub dir: PathBuf,
    /// Its `report.json`.
    pub report: PathBuf,
    /// The sweep trial's name, when the input came from a sweep.
    pub label: Option<String>,
}

impl Input {
    /// The input of a directory holding `report.json`.
    fn of_dir(dir: PathBuf, label: Option<String>) -> Input {
        Input {
            report: dir.join("report.json"),
            dir,
            label,
        }
    }
}

/// Expands the inputs to directories holding `report.json`; the warnings name skipped trials.
pub fn expand(inputs: &[PathBuf], warnings: &mut Vec<String>) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for path in inputs {
        if path.is_file() {
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            out.push(Input {
                dir,
                report: path.clone(),
                label: None,
            });
        } else if path.join("report.json").is_file() {
            out.push(Input::of_dir(path.clone(), None));
        } else if path.join("manifest.json").is_file() {
            out.extend(sweep_trials(path, warnings)?);
        } else if path.is_dir() {
            let mut subs: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("report.json").is_file())
                .collect();
            subs.sort();
            if subs.is_empty() {
                bail!(
                    "{}: no report.json, no manifest.json, and no subdirectory with a report.json",
                    path.display()
                );
            }
            out.extend(subs.into_iter().map(|dir| Input::of_dir(dir, None)));
        } else {
            bail!("{}: no such run directory or report.json", path.display());
        }
    }
    Ok(out)
}

/// The trials of the sweep in `path` that have a `report.json`, labelled by their names; the
/// others are named in `warnings`.
fn sweep_trials(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<Input>> {
    let file = path.join("manifest.json");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sweep manifest", file.display()))?;
    let mut out = Vec::new();
    for t in &manifest.trials {
        let name = if t.name.is_empty() {
            format!("trial {}", t.index)
        } else {
            t.name.clone()
        };
        let dir = path.join(&t.run_dir);
        if dir.join("report.json").is_file() {
            if t.status != Status::Finished {
                warnings.push(format!(
                    "{}: trial {} ({name}) is marked \"{}\" but has a report.json: included",
                    file.display(),
                    t.index,
                    t.status
                ));
            }
            out.push(Input::of_dir(dir, Some(name)));
        } else {
            warnings.push(format!(
                "{}: trial {} ({name}) is {} (no report.json in {}): skipped",
                file.display(),
                t.index,
                t.status,
                dir.display()
            ));
        }
    }
    if out.is_empty() {
        bail!(
            "sweep {} ({}) has no finished trial with a report.json",
            path.display(),
            manifest.sweep_id
        );
    }
    Ok(out)
}

/// The label of a run directory: its name, `RUN/evals/ID` for an evaluation.
pub fn dir_label(dir: &Path) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    match dir.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "evals") => match p.parent() {
            Some(run) => format!("{}/evals/{}", name(run), name(dir)),
            None => name(dir),
        },
        _ => name(dir),
    }
}

/// The epochs of a run directory, or of the run an evaluation directory belongs to.
pub fn history_of(dir: &Path, report: &Report) -> Result<Vec<EpochRecord>> {
    let mut candidates = vec![dir.to_path_buf()];
    if let Some(run) = dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "evals"))
        .and_then(Path::parent)
    {
        candidates.push(run.to_path_buf());
    }
    for c in candidates {
        if c.join(crate::history::FILE).is_file() {
            return Ok(History::load(&c)?.epochs().to_vec());
        }
    }
    // No history file: the report's epoch table.
    Ok(report
        .epochs
        .iter()
        .map(|e| {
            let mut valid = BTreeMap::new();
            for (k, v) in [
                ("Loss", e.val_loss),
                ("BLEU-4", e.val_bleu4),
                ("CIDEr", e.val_cider),
            ] {
                if let Some(v) = v {
                    valid.insert(k.to_string(), v);
                }
            }
            EpochRecord {
                epoch: e.epoch,
                phase: "xe".into(),
                step: 0,
                lr: e.lr.unwrap_or(0.0),
                train: e
                    .train_loss
                    .map(|v| BTreeMap::from([("Loss".to_string(), v)]))
                    .unwrap_or_default(),
                valid,
                wall_s: 0.0,
                cpu_s: None,
            }
        })
        .collect())
}

/// Loads every input's report and history.
pub fn load_runs(inputs: &[PathBuf], warnings: &mut Vec<String>) -> Result<Vec<RunData>> {
    let expanded = expand(inputs, warnings)?;
    let mut runs = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for input in expanded {
        let report = Report::load(&input.report)?;
        let history = history_of(&input.dir, &report)?;
        let mut label = input.label.unwrap_or_else(|| dir_label(&input.dir));
        let count = seen.entry(label.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            label = format!("{label}#{count}");
        }
        runs.push(RunData {
            dir: input.dir,
            label,
            report,
            history,
        });
    }
    Ok(runs)
}

/// Reads `captions.json` (`[{"image_id", "caption"}]`) of a run directory.
pub fn read_captions(dir: &Path) -> Result<BTreeMap<String, String>> {
    let file = dir.join("captions.json");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let items: Vec<serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON list of captions", file.display()))?;
    let mut out = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let id = json_id(&item["image_id"])
            .with_context(|| format!("{}: entry {i} has no image_id", file.display()))?;
        let caption = item["caption"]
            .as_str()
            .with_context(|| format!("{}: entry {i} has no caption string", file.display()))?;
        out.insert(id, caption.to_string());
    }
    Ok(out)
}

/// An image id as text: COCO's integer ids and file-name ids alike.
fn json_id(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `refs.json` (COCO annotations) of a run directory, parsed, and its path.
fn refs_json(dir: &Path) -> Result<(serde_json::Value, PathBuf)> {
    let file = dir.join("refs.json");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let v =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    Ok((v, file))
}

/// A test image's file as a run's `refs.json` records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFile {
    /// File name (COCO's `file_name`; the report's sample names).
    pub name: String,
    /// Where the run read it, as the run saw it (relative to its working directory or absolute).
    pub path: Option<PathBuf>,
}

/// Where each image id of a run's `refs.json` is: its `images[]` entry's `path` (where the run
/// read it) and `file_name` (runs written before they were recorded have neither).
pub fn read_image_files(dir: &Path) -> Result<BTreeMap<String, ImageFile>> {
    let (v, _) = refs_json(dir)?;
    let images = v["images"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(images
        .iter()
        .filter_map(|i| {
            let file = ImageFile {
                name: i["file_name"].as_str()?.to_string(),
                path: i["path"].as_str().map(PathBuf::from),
            };
            Some((json_id(&i["id"])?, file))
        })
        .collect())
}

/// Reads `refs.json` (COCO annotations) of a run directory: references by image id.
pub fn read_refs(dir: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let (v, file) = refs_json(dir)?;
    let anns = v["annotations"]
        .as_array()
        .with_context(|| format!("{}: no annotations list", file.display()))?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, a) in anns.iter().enumerate() {
        let id = json_id(&a["image_id"])
            .with_context(|| format!("{}: annotation {i} has no image_id", file.display()))?;
        let caption = a["caption"]
            .as_str()
            .with_context(|| format!("{}: annotation {i} has no caption", file.display()))?;
        out.entry(id).or_default().push(caption.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::plan::ManifestTrial;

    fn touch_report(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("report.json"), "{}").unwrap();
    }

    fn trial(index: usize, status: Status) -> ManifestTrial {
        let name = format!("{index:03}-seed={index}");
        ManifestTrial {
            index,
            run_dir: name.clone(),
            name,
            overrides: BTreeMap::new(),
            seed: index as u64,
            status,
        }
    }

    #[test]
    fn a_sweep_expands_to_its_trials_with_a_report_and_names_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let sweep = tmp.path().join("sweep-1");
        let trials = vec![
            trial(0, Status::Finished),
            trial(1, Status::Running),
            trial(2, Status::Pending),
        ];
        touch_report(&sweep.join(&trials[0].run_dir));
        touch_report(&sweep.join(&trials[1].run_dir));
        let manifest = Manifest {
            sweep_id: "sweep-1".into(),
            spec: "tiny.toml".into(),
            trials,
            slurm_jobs: Vec::new(),
        };
        std::fs::write(
            sweep.join("manifest.json"),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        let mut warnings = Vec::new();
        let inputs = expand(std::slice::from_ref(&sweep), &mut warnings).unwrap();
        let labels: Vec<Option<&str>> = inputs.iter().map(|i| i.label.as_deref()).collect();
        assert_eq!(labels, [Some("000-seed=0"), Some("001-seed=1")]);
        assert_eq!(inputs[1].dir, sweep.join("001-seed=1"));
        assert_eq!(inputs[1].report, sweep.join("001-seed=1/report.json"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].ends_with(
                "trial 1 (001-seed=1) is marked \"running\" but has a report.json: included"
            ),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("trial 2 (002-seed=2) is pending (no report.json in "),
            "{warnings:?}"
        );
        // A sweep without any report is an error naming it.
        std::fs::remove_dir_all(sweep.join("000-seed=0")).unwrap();
        std::fs::remove_dir_all(sweep.join("001-seed=1")).unwrap();
        let err = expand(&[sweep], &mut warnings).unwrap_err().to_string();
        assert!(
            err.ends_with("(sweep-1) has no finished trial with a report.json"),
            "{err}"
        );
    }

    #[test]
    fn directories_and_report_files_expand_to_run_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("runs");
        for run in ["b", "a"] {
            touch_report(&parent.join(run));
        }
        std::fs::create_dir_all(parent.join("c")).unwrap();
        let mut warnings = Vec::new();
        let inputs = expand(
            &[
                parent.clone(),
                parent.join("b/report.json"),
                parent.join("a"),
            ],
            &mut warnings,
        )
        .unwrap();
        let dirs: Vec<&Path> = inputs.iter().map(|i| i.dir.as_path()).collect();
        let (a, b) = (parent.join("a"), parent.join("b"));
        assert_eq!(dirs, [&a, &b, &b, &a], "subdirectories in name order");
        assert!(inputs.iter().all(|i| i.label.is_none()));
        assert!(warnings.is_empty());
        let err = expand(&[parent.join("c")], &mut warnings).unwrap_err();
        assert!(err
            .to_string()
            .contains("no subdirectory with a report.json"));
        let err = expand(&[tmp.path().join("nowhere")], &mut warnings).unwrap_err();
        assert!(err.to_string().contains("nowhere: no such run directory"));
    }

    #[test]
    fn labels_are_directory_names_made_unique_and_evaluations_name_their_run() {
        assert_eq!(dir_label(Path::new("runs/tiny/r1")), "r1");
        assert_eq!(dir_label(Path::new("runs/r1/evals/e2")), "r1/evals/e2");
        let tmp = tempfile::tempdir().unwrap();
        let report = super::super::fixtures::report(3, &[], &[("CIDEr", 0.5)], 2.0);
        let mut dirs = Vec::new();
        for parent in ["x", "y"] {
            let dir = tmp.path().join(parent).join("run");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("report.json"),
                serde_json::to_string(&report).unwrap(),
            )
            .unwrap();
            dirs.push(dir);
        }
        let runs = load_runs(&dirs, &mut Vec::new()).unwrap();
        let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["run", "run#2"]);
        assert_eq!(runs[1].seed(), 3);
        assert_eq!(runs[1].metrics()["CIDEr"], 0.5);
        assert!(runs[1].history.is_empty(), "no history.jsonl, no epochs");
    }

    #[test]
    fn captions_and_references_are_read_by_integer_or_string_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("captions.json"),
            r#"[{"image_id": 42, "caption": "a dog"}, {"image_id": "b.jpg", "caption": "a cat"}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("refs.json"),
            r#"{"images": [{"id": 42, "file_name": "42.jpg", "path": "data/42.jpg"}, {"id": "b.jpg"}],
                "annotations": [{"image_id": 42, "caption": "a dog runs"},
                                {"image_id": 42, "caption": "dog"},
                                {"image_id": "b.jpg", "caption": "a cat sits"}]}"#,
        )
        .unwrap();
        let caps = read_captions(dir).unwrap();
        assert_eq!(caps["42"], "a dog");
        assert_eq!(caps["b.jpg"], "a cat");
        let refs = read_refs(dir).unwrap();
        assert_eq!(refs["42"], ["a dog runs", "dog"]);
        let files = read_image_files(dir).unwrap();
        assert_eq!(
            files["42"],
            ImageFile {
                name: "42.jpg".into(),
                path: Some(PathBuf::from("data/42.jpg")),
            }
        );
        assert!(!files.contains_key("b.jpg"), "no file_name recorded");
        std::fs::write(dir.join("captions.json"), r#"[{"image_id": 1}]"#).unwrap();
        let err = read_captions(dir).unwrap_err().to_string();
        assert!(err.ends_with("entry 0 has no caption string"), "{err}");
    }
}
