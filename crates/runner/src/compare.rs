//! `caplab compare`: experiments, not single runs.
//!
//! `caplab compare RUN|EVAL|SWEEP_DIR... [--baseline DIR] [--group-by KEYS] [--out DIR]`
//!
//! # Inputs
//!
//! Each input is a run directory or an evaluation directory (`RUN/evals/<id>/`), both holding
//! `report.json`; a `report.json` file; a sweep directory, whose `manifest.json` lists its
//! trials (trials without a `report.json` — running, failed, pending — are skipped with a
//! warning); or any other directory whose immediate subdirectories hold `report.json`.
//!
//! # The table
//!
//! One polars `DataFrame` (eager) has a row per run: its label, group and directory, the spec
//! keys that differ between the runs (flattened as `model.decoder.cell`), its seed
//! (`experiment.seed`), every test metric of the model and its wall time. Runs that differ
//! only by seed form a group (or, with `--group-by`, runs with the same values of the given
//! keys); each group gets the mean ± sample standard deviation of every column and a Student-t
//! 95% confidence interval over its seeds ([`stats::summarize`]).
//!
//! # Significance
//!
//! Every group is compared with the baseline group (`--baseline`, default the first input's)
//! by a paired bootstrap over test images ([`stats::paired_difference`]): the per-image
//! sufficient statistics of every metric are recomputed from the run's `captions.json` and
//! `refs.json` with caplab-metrics, so corpus metrics (BLEU's n-gram and length counts,
//! METEOR's segment statistics) are recomputed on each resample; CIDEr-D keeps the document
//! frequencies of the full test set (see [`stats`] for why). Runs are paired across groups by
//! seed when the groups share seeds. The resampling seed is fixed: the output is reproducible.
//!
//! # Outputs
//!
//! `compare.md` is printed; with `--out DIR` it is also written there with `compare.csv` and
//! `compare.parquet` (the run table) and `compare.html` (tables, spec diff, validation curves
//! as inline SVG, a caption gallery), each atomically.

pub mod html;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use caplab_metrics::{EvalOptions, EvalStats, MeteorMode, MetricStats};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};
use serde::Deserialize;

use crate::fsutil::write_atomic;
use crate::history::{EpochRecord, History};
use crate::report::Report;
use stats::{BootstrapSettings, Difference, Summary};

/// Significance level of the `n.s.` mark.
pub const ALPHA: f64 = 0.05;

/// Command-line arguments of `caplab compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Run directories, evaluation directories, report.json files or sweep directories.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// The baseline: a run directory (its group) or a group label. Default: the first input's group.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Group runs by these spec keys (comma-separated) instead of "everything but the seed".
    #[arg(long, value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// Write compare.md, compare.csv, compare.parquet and compare.html into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
}

/// Options of [`compare`].
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// See [`CompareArgs::baseline`].
    pub baseline: Option<String>,
    /// See [`CompareArgs::group_by`].
    pub group_by: Vec<String>,
    /// Bootstrap settings.
    pub bootstrap: BootstrapSettings,
}

/// `caplab compare`: prints compare.md, and writes every output with `--out`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let opts = CompareOptions {
        baseline: args.baseline.clone(),
        group_by: args.group_by.clone(),
        bootstrap: BootstrapSettings {
            samples: args.bootstrap,
            ..Default::default()
        },
    };
    let c = compare(&args.inputs, &opts)?;
    if let Some(out) = &args.out {
        c.write(out)?;
    }
    print!("{}", c.markdown);
    Ok(())
}

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

/// One trial of a sweep's `manifest.json`.
#[derive(Clone, Debug, Deserialize)]
struct Trial {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    name: String,
    run_dir: Option<PathBuf>,
    #[serde(default)]
    status: String,
}

/// A sweep's `manifest.json` (only what compare reads).
#[derive(Clone, Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    sweep_id: String,
    trials: Vec<Trial>,
}

/// An expanded input: a directory with `report.json`, and a label when the sweep names it.
#[derive(Clone, Debug)]
struct Input {
    dir: PathBuf,
    report: PathBuf,
    label: Option<String>,
}

/// Expands the inputs to directories holding `report.json`; the warnings name skipped trials.
fn expand(inputs: &[PathBuf], warnings: &mut Vec<String>) -> Result<Vec<Input>> {
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
            out.push(Input {
                dir: path.clone(),
                report: path.join("report.json"),
                label: None,
            });
        } else if path.join("manifest.json").is_file() {
            let file = path.join("manifest.json");
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let manifest: Manifest = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a sweep manifest", file.display()))?;
            let before = out.len();
            for t in &manifest.trials {
                let name = if t.name.is_empty() {
                    format!("trial {}", t.index)
                } else {
                    t.name.clone()
                };
                let Some(rel) = &t.run_dir else {
                    warnings.push(format!(
                        "{}: trial {} ({name}) is {} and has no run directory: skipped",
                        file.display(),
                        t.index,
                        if t.status.is_empty() {
                            "unknown"
                        } else {
                            &t.status
                        }
                    ));
                    continue;
                };
                let dir = path.join(rel);
                if dir.join("report.json").is_file() {
                    if t.status != "finished" {
                        warnings.push(format!(
                            "{}: trial {} ({name}) is marked {:?} but has a report.json: included",
                            file.display(),
                            t.index,
                            t.status
                        ));
                    }
                    out.push(Input {
                        report: dir.join("report.json"),
                        dir,
                        label: Some(name),
                    });
                } else {
                    warnings.push(format!(
                        "{}: trial {} ({name}) is {} (no report.json in {}): skipped",
                        file.display(),
                        t.index,
                        if t.status.is_empty() {
                            "unknown"
                        } else {
                            &t.status
                        },
                        dir.display()
                    ));
                }
            }
            if out.len() == before {
                bail!(
                    "sweep {} ({}) has no finished trial with a report.json",
                    path.display(),
                    manifest.sweep_id
                );
            }
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
            out.extend(subs.into_iter().map(|dir| Input {
                report: dir.join("report.json"),
                dir,
                label: None,
            }));
        } else {
            bail!("{}: no such run directory or report.json", path.display());
        }
    }
    Ok(out)
}

/// The label of a run directory: its name, `RUN/evals/ID` for an evaluation.
fn dir_label(dir: &Path) -> String {
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
fn history_of(dir: &Path, report: &Report) -> Result<Vec<EpochRecord>> {
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

/// Metric columns: the report's order of papers (BLEU-1..4, METEOR, ROUGE-L, CIDEr), then others.
fn metric_names(runs: &[RunData]) -> Vec<String> {
    let all: BTreeSet<String> = runs.iter().flat_map(|r| r.metrics().into_keys()).collect();
    let order = [
        "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr",
    ];
    let mut names: Vec<String> = Vec::new();
    for o in order {
        names.extend(all.iter().filter(|k| k.starts_with(o)).cloned());
    }
    names.dedup();
    for k in &all {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names
}

/// Spec keys that are not part of an experiment's configuration.
const NOT_CONFIG: [&str; 2] = ["experiment.seed", "experiment.runs_dir"];

/// Spec keys whose values are not all equal (a missing key counts as a value).
fn differing_keys(runs: &[RunData]) -> Vec<String> {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.report.spec.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            let first = runs.first().and_then(|r| r.report.spec.get(*k));
            runs.iter().any(|r| r.report.spec.get(*k) != first)
        })
        .cloned()
        .collect()
}

/// A group of runs.
#[derive(Clone, Debug)]
pub struct Group {
    /// Label: the grouping keys' values, `key=value, …`.
    pub label: String,
    /// Indices of its runs in [`Comparison::runs`].
    pub runs: Vec<usize>,
    /// Summary of each metric column (and `wall_s`) over its runs.
    pub summaries: BTreeMap<String, Summary>,
}

impl Comparison {
    /// The label of the group run `i` belongs to.
    pub fn group_of(&self, i: usize) -> &str {
        self.groups
            .iter()
            .find(|g| g.runs.contains(&i))
            .map_or("", |g| g.label.as_str())
    }
}

/// A group against the baseline group.
#[derive(Clone, Debug)]
pub struct Significance {
    /// Index of the group in [`Comparison::groups`].
    pub group: usize,
    /// How runs were paired, e.g. `by seed (3 pairs)`.
    pub pairing: String,
    /// Test images resampled.
    pub images: usize,
    /// Difference per metric (group − baseline).
    pub diffs: BTreeMap<String, Difference>,
    /// Why there are no differences, when there are none.
    pub note: Option<String>,
}

/// The result of [`compare`].
pub struct Comparison {
    /// The runs, in input order.
    pub runs: Vec<RunData>,
    /// One row per run (see the module documentation).
    pub frame: DataFrame,
    /// Spec keys that differ between runs (seed excluded).
    pub differing: Vec<String>,
    /// Keys the runs were grouped by.
    pub group_keys: Vec<String>,
    /// Metric columns.
    pub metrics: Vec<String>,
    /// Groups, in order of their first run.
    pub groups: Vec<Group>,
    /// Index of the baseline group.
    pub baseline: usize,
    /// Every non-baseline group against the baseline.
    pub significance: Vec<Significance>,
    /// Bootstrap settings used.
    pub bootstrap: BootstrapSettings,
    /// Warnings (skipped trials, recomputation mismatches).
    pub warnings: Vec<String>,
    /// compare.md.
    pub markdown: String,
}

/// Compares the runs of `inputs` (see the module documentation).
pub fn compare(inputs: &[PathBuf], opts: &CompareOptions) -> Result<Comparison> {
    let mut warnings = Vec::new();
    let runs = load_runs(inputs, &mut warnings)?;
    if runs.is_empty() {
        bail!("no runs to compare");
    }
    let differing: Vec<String> = differing_keys(&runs)
        .into_iter()
        .filter(|k| !NOT_CONFIG.contains(&k.as_str()))
        .collect();
    let group_keys = if opts.group_by.is_empty() {
        differing.clone()
    } else {
        for k in &opts.group_by {
            if !runs.iter().any(|r| r.report.spec.contains_key(k)) {
                bail!(
                    "--group-by {k}: no run's spec has that key (e.g. {})",
                    runs[0]
                        .report
                        .spec
                        .keys()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        opts.group_by.clone()
    };
    let metrics = metric_names(&runs);
    let frame = build_frame(&runs, &differing, &group_keys, &metrics)?;

    // Groups in order of first appearance.
    let mut groups: Vec<Group> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let label = group_label(r, &group_keys);
        match groups.iter_mut().find(|g| g.label == label) {
            Some(g) => g.runs.push(i),
            None => groups.push(Group {
                label,
                runs: vec![i],
                summaries: BTreeMap::new(),
            }),
        }
    }
    let confidence = opts.bootstrap.confidence;
    for g in &mut groups {
        for col in metrics.iter().chain(std::iter::once(&"wall_s".to_string())) {
            let values = column_values(&frame, col, &g.runs)?;
            if let Some(s) = stats::summarize(&values, confidence) {
                g.summaries.insert(col.clone(), s);
            }
        }
        let seeds: BTreeSet<u64> = g.runs.iter().map(|i| runs[*i].seed()).collect();
        if seeds.len() < g.runs.len() {
            warnings.push(format!(
                "group {:?} has runs with the same seed: they are not independent repetitions",
                g.label
            ));
        }
    }
    let baseline = match &opts.baseline {
        None => 0,
        Some(b) => find_baseline(b, &runs, &groups)?,
    };
    // Readable labels: each group by what differs from the baseline (absent keys left out).
    let short = short_labels(&runs, &groups, &group_keys, baseline);
    if short.iter().collect::<BTreeSet<_>>().len() == short.len() {
        for (g, l) in groups.iter_mut().zip(short) {
            g.label = l;
        }
    }
    let mut frame = frame;
    let mut run_groups = vec![String::new(); runs.len()];
    for g in &groups {
        for i in &g.runs {
            run_groups[*i] = g.label.clone();
        }
    }
    frame
        .with_column(Column::new("group".into(), run_groups))
        .context("relabelling the group column")?;

    // Per-image statistics of every run, once.
    let mut eval_stats: Vec<Option<EvalStats>> = Vec::new();
    for r in &runs {
        match run_stats(r) {
            Ok(s) => {
                check_recomputed(r, &s, &mut warnings);
                eval_stats.push(Some(s));
            }
            Err(e) => {
                warnings.push(format!("{}: no bootstrap for this run: {e:#}", r.label));
                eval_stats.push(None);
            }
        }
    }
    let significance = groups
        .iter()
        .enumerate()
        .filter(|(g, _)| *g != baseline)
        .map(|(g, _)| {
            significance_of(
                &runs,
                &groups,
                &eval_stats,
                &metrics,
                baseline,
                g,
                &opts.bootstrap,
            )
        })
        .collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut c = Comparison {
        runs,
        frame,
        differing,
        group_keys,
        metrics,
        groups,
        baseline,
        significance,
        bootstrap: opts.bootstrap.clone(),
        warnings,
        markdown: String::new(),
    };
    c.markdown = c.to_markdown();
    Ok(c)
}

/// Each group's label as the grouping keys where it differs from the baseline group (keys a
/// group does not have are left out); the baseline's as its keys that differ from any group.
fn short_labels(
    runs: &[RunData],
    groups: &[Group],
    keys: &[String],
    baseline: usize,
) -> Vec<String> {
    let value = |g: &Group, k: &str| runs[g.runs[0]].spec_value(k);
    let base = &groups[baseline];
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let parts: Vec<String> = keys
                .iter()
                .filter_map(|k| {
                    let v = value(g, k)?;
                    let differs = if i == baseline {
                        groups.iter().any(|o| value(o, k).is_some_and(|w| w != v))
                    } else {
                        value(base, k).as_ref() != Some(&v)
                    };
                    differs.then(|| format!("{k}={v}"))
                })
                .collect();
            match (i == baseline, parts.is_empty()) {
                (true, true) => "baseline".to_string(),
                (true, false) => parts.join(", "),
                (false, true) => group_label(&runs[g.runs[0]], keys),
                (false, false) => parts.join(", "),
            }
        })
        .collect()
}

fn group_label(r: &RunData, keys: &[String]) -> String {
    if keys.is_empty() {
        return "all runs".to_string();
    }
    keys.iter()
        .map(|k| format!("{k}={}", r.spec_value(k).unwrap_or_else(|| "–".into())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_baseline(b: &str, runs: &[RunData], groups: &[Group]) -> Result<usize> {
    if let Some(g) = groups.iter().position(|g| g.label == b) {
        return Ok(g);
    }
    let path = Path::new(b);
    let wanted = path.canonicalize().ok();
    let run = runs.iter().position(|r| {
        let dir = r.dir.canonicalize().ok();
        (wanted.is_some() && dir == wanted) || r.label == b
    });
    if let Some(i) = run {
        return groups
            .iter()
            .position(|g| g.runs.contains(&i))
            .context("internal: a run without a group");
    }
    // A sweep or parent directory: the group of its first run.
    if let Some(w) = &wanted {
        if let Some(i) = runs
            .iter()
            .position(|r| r.dir.canonicalize().ok().is_some_and(|d| d.starts_with(w)))
        {
            return groups
                .iter()
                .position(|g| g.runs.contains(&i))
                .context("internal: a run without a group");
        }
    }
    bail!(
        "--baseline {b}: neither a compared run directory nor a group label (groups: {})",
        groups
            .iter()
            .map(|g| g.label.clone())
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// Values of a float column at `rows` (nulls left out).
fn column_values(frame: &DataFrame, col: &str, rows: &[usize]) -> Result<Vec<f64>> {
    let c = frame
        .column(col)
        .with_context(|| format!("column {col}"))?
        .f64()
        .with_context(|| format!("column {col} is not a float column"))?;
    Ok(rows.iter().filter_map(|i| c.get(*i)).collect())
}

/// The run table as a DataFrame.
fn build_frame(
    runs: &[RunData],
    differing: &[String],
    group_keys: &[String],
    metrics: &[String],
) -> Result<DataFrame> {
    let mut cols: Vec<Column> = Vec::new();
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    cols.push(Column::new("run".into(), labels));
    let groups: Vec<String> = runs.iter().map(|r| group_label(r, group_keys)).collect();
    cols.push(Column::new("group".into(), groups));
    let dirs: Vec<String> = runs.iter().map(|r| r.dir.display().to_string()).collect();
    cols.push(Column::new("dir".into(), dirs));
    let mut keys: Vec<&String> = differing.iter().collect();
    for k in group_keys {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for k in keys {
        let vals: Vec<Option<String>> = runs.iter().map(|r| r.spec_value(k)).collect();
        cols.push(Column::new(k.as_str().into(), vals));
    }
    let seeds: Vec<i64> = runs.iter().map(|r| r.seed() as i64).collect();
    cols.push(Column::new("seed".into(), seeds));
    for m in metrics {
        let vals: Vec<Option<f64>> = runs.iter().map(|r| r.metrics().get(m).copied()).collect();
        cols.push(Column::new(m.as_str().into(), vals));
    }
    let best: Vec<i64> = runs.iter().map(|r| r.report.best_epoch as i64).collect();
    cols.push(Column::new("best_epoch".into(), best));
    let wall: Vec<f64> = runs.iter().map(|r| r.report.wall_time.total_s).collect();
    cols.push(Column::new("wall_s".into(), wall));
    DataFrame::new_infer_height(cols).context("building the run table")
}

/// Reads `captions.json` (`[{"image_id", "caption"}]`) of a run directory.
fn read_captions(dir: &Path) -> Result<BTreeMap<String, String>> {
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

/// Where each image id of a run's `refs.json` is: its `images[]` entry's `path` (where the run
/// read it) and `file_name` (runs written before they were recorded have neither).
fn read_image_files(dir: &Path) -> Result<BTreeMap<String, ImageFile>> {
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

/// A test image's file as a run's `refs.json` records it.
#[derive(Clone, Debug)]
struct ImageFile {
    /// File name (COCO's `file_name`; the report's sample names).
    name: String,
    /// Where the run read it, as the run saw it (relative to its working directory or absolute).
    path: Option<PathBuf>,
}

/// Reads `refs.json` (COCO annotations) of a run directory: references by image id.
fn read_refs(dir: &Path) -> Result<BTreeMap<String, Vec<String>>> {
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

/// The METEOR a run's report was scored with, from its metric names.
fn meteor_mode_of(r: &RunData) -> MeteorMode {
    let dir = r.spec_value("eval.meteor_dir").map(PathBuf::from);
    let metrics = r.metrics();
    if metrics.contains_key(caplab_metrics::METEOR_FULL) {
        MeteorMode::best_available(dir)
    } else if metrics.contains_key(caplab_metrics::METEOR_EXACT_STEM) {
        MeteorMode::ExactStem { dir }
    } else {
        MeteorMode::Off
    }
}

/// Per-image sufficient statistics of a run's test captions, recomputed with caplab-metrics.
fn run_stats(r: &RunData) -> Result<EvalStats> {
    let cands = read_captions(&r.dir)?;
    let refs = read_refs(&r.dir)?;
    let opts = EvalOptions {
        meteor: meteor_mode_of(r),
    };
    caplab_metrics::evaluate_stats(&refs, &cands, &opts)
        .with_context(|| format!("scoring {}", r.dir.join("captions.json").display()))
}

/// Warns when the recomputed corpus metrics are not the report's.
fn check_recomputed(r: &RunData, s: &EvalStats, warnings: &mut Vec<String>) {
    let reported = r.metrics();
    for m in &s.metrics {
        if let Some(v) = reported.get(&m.name) {
            let again = m.corpus_value();
            if (again - v).abs() > 1e-9 * v.abs().max(1.0) {
                warnings.push(format!(
                    "{}: {} recomputed from captions.json is {again:.6}, report.json says {v:.6}",
                    r.label, m.name
                ));
            }
        }
    }
}

/// A metric's statistics restricted to `ids`, in that order.
fn restrict(stats: &EvalStats, name: &str, ids: &[String]) -> Option<MetricStats> {
    let m = stats.metrics.iter().find(|m| m.name == name)?;
    let pos: BTreeMap<&str, usize> = stats
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let per_image = ids
        .iter()
        .map(|id| pos.get(id.as_str()).map(|i| m.per_image[*i].clone()))
        .collect::<Option<Vec<_>>>()?;
    Some(MetricStats {
        name: m.name.clone(),
        aggregate: m.aggregate,
        per_image,
    })
}

fn significance_of(
    runs: &[RunData],
    groups: &[Group],
    eval_stats: &[Option<EvalStats>],
    metrics: &[String],
    baseline: usize,
    group: usize,
    settings: &BootstrapSettings,
) -> Significance {
    let mut out = Significance {
        group,
        pairing: String::new(),
        images: 0,
        diffs: BTreeMap::new(),
        note: None,
    };
    let usable = |g: usize| -> Vec<usize> {
        groups[g]
            .runs
            .iter()
            .copied()
            .filter(|i| eval_stats[*i].is_some())
            .collect()
    };
    let (mut a, mut b) = (usable(baseline), usable(group));
    // Pair by seed when the groups share seeds.
    let seeds_a: BTreeSet<u64> = a.iter().map(|i| runs[*i].seed()).collect();
    let seeds_b: BTreeSet<u64> = b.iter().map(|i| runs[*i].seed()).collect();
    let shared: BTreeSet<u64> = seeds_a.intersection(&seeds_b).copied().collect();
    if !shared.is_empty() {
        let keep = |v: &mut Vec<usize>| {
            let mut taken = BTreeSet::new();
            v.retain(|i| shared.contains(&runs[*i].seed()) && taken.insert(runs[*i].seed()));
        };
        keep(&mut a);
        keep(&mut b);
        out.pairing = format!("by seed ({} pairs)", shared.len());
    } else {
        out.pairing = format!("unpaired seeds ({} vs {} runs)", a.len(), b.len());
    }
    if a.is_empty() || b.is_empty() {
        out.note = Some("no run with captions.json and refs.json on one side".into());
        return out;
    }
    // The images every compared run was scored on.
    let mut ids: Option<BTreeSet<String>> = None;
    for i in a.iter().chain(&b) {
        if let Some(s) = &eval_stats[*i] {
            let set: BTreeSet<String> = s.ids.iter().cloned().collect();
            ids = Some(match ids {
                None => set,
                Some(prev) => prev.intersection(&set).cloned().collect(),
            });
        }
    }
    let ids: Vec<String> = ids.unwrap_or_default().into_iter().collect();
    if ids.is_empty() {
        out.note = Some("the runs share no test image".into());
        return out;
    }
    out.images = ids.len();
    for m in metrics {
        let side = |v: &[usize]| -> Option<Vec<MetricStats>> {
            v.iter()
                .map(|i| eval_stats[*i].as_ref().and_then(|s| restrict(s, m, &ids)))
                .collect()
        };
        let (Some(sa), Some(sb)) = (side(&a), side(&b)) else {
            continue;
        };
        let ra: Vec<&MetricStats> = sa.iter().collect();
        let rb: Vec<&MetricStats> = sb.iter().collect();
        if let Some(d) = stats::paired_difference(&ra, &rb, ids.len(), settings) {
            out.diffs.insert(m.clone(), d);
        }
    }
    out
}

fn fmt_summary(s: Option<&Summary>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) => match (s.std, s.ci) {
            (Some(sd), Some((lo, hi))) => {
                format!(
                    "{:.digits$} ± {sd:.digits$} [{lo:.digits$}, {hi:.digits$}]",
                    s.mean
                )
            }
            _ => format!("{:.digits$}", s.mean),
        },
    }
}

/// A difference as `+0.0123 [0.0050, 0.0190] p=0.002`, with `n.s.` when p ≥ [`ALPHA`].
pub fn fmt_difference(d: &Difference) -> String {
    let mark = if d.p_value < ALPHA { "" } else { " n.s." };
    format!(
        "{:+.4} [{:+.4}, {:+.4}] p={:.3}{mark}",
        d.estimate, d.lower, d.upper, d.p_value
    )
}

impl Comparison {
    /// The footnotes shared by compare.md and compare.html.
    pub fn footnotes(&self) -> Vec<String> {
        vec![
            "Group cells: mean ± sample standard deviation [95% confidence interval of the mean, \
             Student t with n−1 degrees of freedom] over the group's runs (seeds); one run: its value."
                .to_string(),
            format!(
                "Differences: group minus baseline, mean over the group's runs, on the test set; [95% \
                 percentile interval] and two-sided p-value of a paired bootstrap over test images \
                 ({} resamples, seed {}); the same resampled images score every run; `n.s.`: p ≥ {ALPHA} \
                 (no correction for multiple comparisons). It measures test-set sampling noise; \
                 seed-to-seed variation is in the group intervals above.",
                self.bootstrap.samples, self.bootstrap.seed
            ),
            "Per resample every corpus metric is recomputed from per-image sufficient statistics \
             (recomputed from each run's captions.json and refs.json with caplab-metrics): BLEU from \
             summed n-gram match and length counts, METEOR from summed segment statistics, ROUGE-L as \
             the mean of per-image scores."
                .to_string(),
            "CIDEr-D keeps the document frequencies of the full test set's references on every \
             resample rather than recomputing them: they depend only on the references, are the same \
             for both systems of a pair, and a resample drawn with replacement would count a repeated \
             image's references as extra documents, shifting IDF weights by an artefact of resampling."
                .to_string(),
        ]
    }

    /// compare.md.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# caplab compare\n");
        let grouped = if self.group_keys.is_empty() {
            "no spec key differs but the seed".to_string()
        } else {
            format!(
                "grouped by {}",
                self.group_keys
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            s,
            "{} runs in {} groups ({grouped}); baseline: **{}**.\n",
            self.runs.len(),
            self.groups.len(),
            self.groups[self.baseline].label
        );
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "Warnings:\n");
            for w in &self.warnings {
                let _ = writeln!(s, "- {w}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Groups (test metrics)\n");
        let mut header = vec!["group".to_string(), "n".into(), "seeds".into()];
        header.extend(self.metrics.iter().cloned());
        header.push("wall s".into());
        table_header(&mut s, &header);
        for g in &self.groups {
            let mut cells = vec![g.label.clone(), g.runs.len().to_string(), self.seeds(g)];
            for m in &self.metrics {
                cells.push(fmt_summary(g.summaries.get(m), 4));
            }
            cells.push(fmt_summary(g.summaries.get("wall_s"), 1));
            table_row(&mut s, &cells);
        }
        if !self.significance.is_empty() {
            let _ = writeln!(
                s,
                "\n## Against the baseline ({})\n",
                self.groups[self.baseline].label
            );
            let mut header = vec!["group".to_string(), "pairing".into(), "images".into()];
            header.extend(self.metrics.iter().cloned());
            table_header(&mut s, &header);
            for sig in &self.significance {
                let mut cells = vec![
                    self.groups[sig.group].label.clone(),
                    sig.pairing.clone(),
                    sig.images.to_string(),
                ];
                for m in &self.metrics {
                    cells.push(match sig.diffs.get(m) {
                        Some(d) => fmt_difference(d),
                        None => sig.note.clone().unwrap_or_else(|| "–".into()),
                    });
                }
                table_row(&mut s, &cells);
            }
        }
        let _ = writeln!(s, "\n## Runs\n");
        let mut header = vec!["run".to_string(), "group".into(), "seed".into()];
        header.extend(self.metrics.iter().cloned());
        header.extend(["best epoch".to_string(), "wall s".into()]);
        table_header(&mut s, &header);
        for (i, r) in self.runs.iter().enumerate() {
            let m = r.metrics();
            let mut cells = vec![
                r.label.clone(),
                self.group_of(i).to_string(),
                r.seed().to_string(),
            ];
            for k in &self.metrics {
                cells.push(m.get(k).map_or_else(|| "–".into(), |v| format!("{v:.4}")));
            }
            cells.push(r.report.best_epoch.to_string());
            cells.push(format!("{:.1}", r.report.wall_time.total_s));
            table_row(&mut s, &cells);
        }
        let mut diff_keys = self.differing.clone();
        if self.runs.iter().any(|r| r.seed() != self.runs[0].seed()) {
            diff_keys.push("experiment.seed".into());
        }
        if !diff_keys.is_empty() {
            let _ = writeln!(s, "\n## Spec keys that differ\n");
            let mut header = vec!["key".to_string()];
            header.extend(self.runs.iter().map(|r| r.label.clone()));
            table_header(&mut s, &header);
            for k in &diff_keys {
                let mut cells = vec![format!("`{k}`")];
                cells.extend(
                    self.runs
                        .iter()
                        .map(|r| r.spec_value(k).unwrap_or_else(|| "–".into())),
                );
                table_row(&mut s, &cells);
            }
        }
        let _ = writeln!(s, "\n---\n");
        for (i, f) in self.footnotes().iter().enumerate() {
            let _ = writeln!(s, "{}. {f}", i + 1);
        }
        s
    }

    /// The seeds of a group's runs, comma-separated.
    pub fn seeds(&self, g: &Group) -> String {
        g.runs
            .iter()
            .map(|i| self.runs[*i].seed().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// compare.csv.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let mut df = self.frame.clone();
        CsvWriter::new(&mut buf)
            .include_header(true)
            .finish(&mut df)
            .context("writing the run table as CSV")?;
        Ok(buf)
    }

    /// compare.parquet.
    pub fn to_parquet(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let mut df = self.frame.clone();
        ParquetWriter::new(&mut buf)
            .finish(&mut df)
            .context("writing the run table as Parquet")?;
        Ok(buf)
    }

    /// Writes compare.md, compare.csv, compare.parquet and compare.html into `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        write_atomic(&out.join("compare.md"), self.markdown.as_bytes())?;
        write_atomic(&out.join("compare.csv"), &self.to_csv()?)?;
        write_atomic(&out.join("compare.parquet"), &self.to_parquet()?)?;
        write_atomic(&out.join("compare.html"), html::page(self).as_bytes())?;
        Ok(())
    }
}

fn table_header(s: &mut String, cells: &[String]) {
    let _ = writeln!(s, "| {} |", cells.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(cells.len()));
}

fn table_row(s: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    let _ = writeln!(s, "| {} |", cells.join(" | "));
}
