//! The comparison as a table: runs grouped (by every spec key that differs but the seed, or by
//! `--group-by`), each group's summaries, the baseline, one polars `DataFrame` (eager) with a
//! row per run, and [`Comparison`], the result every output is written from, with its CSV and
//! Parquet forms. The markdown is in [`super::output`], the page in [`super::page`].
//!
//! The frame's columns: the run's label, group and directory, the spec keys that differ
//! between the runs and the grouping keys (flattened as `model.decoder.cell`), its seed
//! (`experiment.seed`), every test metric of the model, its best epoch and its wall time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};

use super::inputs::RunData;
use super::significance::{summarize, BootstrapSettings, Significance, Summary};

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

/// The result of [`compare`](super::compare).
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

impl Comparison {
    /// The label of the group run `i` belongs to.
    pub fn group_of(&self, i: usize) -> &str {
        self.groups
            .iter()
            .find(|g| g.runs.contains(&i))
            .map_or("", |g| g.label.as_str())
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
}

/// The table part of a comparison: groups `runs` by `group_by` (or by the spec keys that
/// differ), summarises every metric of each group at `bootstrap.confidence`, finds the
/// `baseline` group (`--baseline`: a group label or a compared run directory; default the
/// first group) and labels each group by what differs from it. Runs of a group that share a
/// seed add to `warnings`. The result has no significance and no markdown yet:
/// [`compare`](super::compare) adds them.
pub fn tabulate(
    runs: Vec<RunData>,
    group_by: &[String],
    baseline: Option<&str>,
    bootstrap: &BootstrapSettings,
    mut warnings: Vec<String>,
) -> Result<Comparison> {
    let differing = differing_keys(&runs);
    let group_keys = grouping_keys(&runs, &differing, group_by)?;
    let metrics = metric_names(&runs);
    let mut frame = build_frame(&runs, &differing, &group_keys, &metrics)?;
    let mut groups = group_runs(
        &runs,
        &group_keys,
        &frame,
        &metrics,
        bootstrap.confidence,
        &mut warnings,
    )?;
    let baseline = match baseline {
        None => 0,
        Some(b) => find_baseline(b, &runs, &groups)?,
    };
    relabel(&mut frame, &mut groups, &runs, &group_keys, baseline)?;
    Ok(Comparison {
        runs,
        frame,
        differing,
        group_keys,
        metrics,
        groups,
        baseline,
        significance: Vec::new(),
        bootstrap: bootstrap.clone(),
        warnings,
        markdown: String::new(),
    })
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

/// Spec keys whose values are not all equal (a missing key counts as a value), the seed and
/// the runs directory left out.
fn differing_keys(runs: &[RunData]) -> Vec<String> {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.report.spec.keys()).collect();
    keys.into_iter()
        .filter(|k| !NOT_CONFIG.contains(&k.as_str()))
        .filter(|k| {
            let first = runs.first().and_then(|r| r.report.spec.get(*k));
            runs.iter().any(|r| r.report.spec.get(*k) != first)
        })
        .cloned()
        .collect()
}

/// The keys runs are grouped by: `group_by` (each must be in some run's spec), or when it is
/// empty the keys that differ.
fn grouping_keys(
    runs: &[RunData],
    differing: &[String],
    group_by: &[String],
) -> Result<Vec<String>> {
    if group_by.is_empty() {
        return Ok(differing.to_vec());
    }
    for k in group_by {
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
    Ok(group_by.to_vec())
}

/// A run's group label before relabelling: `key=value, …` over `keys` (`–` for a key its spec
/// lacks), `all runs` without keys.
pub fn group_label(r: &RunData, keys: &[String]) -> String {
    if keys.is_empty() {
        return "all runs".to_string();
    }
    keys.iter()
        .map(|k| format!("{k}={}", r.spec_value(k).unwrap_or_else(|| "–".into())))
        .collect::<Vec<_>>()
        .join(", ")
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

/// Values of a float column at `rows` (nulls left out).
fn column_values(frame: &DataFrame, col: &str, rows: &[usize]) -> Result<Vec<f64>> {
    let c = frame
        .column(col)
        .with_context(|| format!("column {col}"))?
        .f64()
        .with_context(|| format!("column {col} is not a float column"))?;
    Ok(rows.iter().filter_map(|i| c.get(*i)).collect())
}

/// The runs' groups, in order of their first run, each with the summary (at `confidence`) of
/// every metric column of `frame` and of `wall_s` over its runs; a group whose runs share a
/// seed is named in `warnings`.
fn group_runs(
    runs: &[RunData],
    keys: &[String],
    frame: &DataFrame,
    metrics: &[String],
    confidence: f64,
    warnings: &mut Vec<String>,
) -> Result<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let label = group_label(r, keys);
        match groups.iter_mut().find(|g| g.label == label) {
            Some(g) => g.runs.push(i),
            None => groups.push(Group {
                label,
                runs: vec![i],
                summaries: BTreeMap::new(),
            }),
        }
    }
    for g in &mut groups {
        for col in metrics.iter().chain(std::iter::once(&"wall_s".to_string())) {
            let values = column_values(frame, col, &g.runs)?;
            if let Some(s) = summarize(&values, confidence) {
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
    Ok(groups)
}

/// The baseline group `--baseline b` names: a group label, a compared run (its directory or
/// label), or a directory holding compared runs (the group of its first run).
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

/// Readable labels: each group by what differs from the baseline (absent keys left out), when
/// those labels are unique; the frame's `group` column follows.
fn relabel(
    frame: &mut DataFrame,
    groups: &mut [Group],
    runs: &[RunData],
    keys: &[String],
    baseline: usize,
) -> Result<()> {
    let short = short_labels(runs, groups, keys, baseline);
    if short.iter().collect::<BTreeSet<_>>().len() == short.len() {
        for (g, l) in groups.iter_mut().zip(short) {
            g.label = l;
        }
    }
    let mut run_groups = vec![String::new(); runs.len()];
    for g in groups.iter() {
        for i in &g.runs {
            run_groups[*i] = g.label.clone();
        }
    }
    frame
        .with_column(Column::new("group".into(), run_groups))
        .context("relabelling the group column")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{cells_by_seeds, report, run};
    use super::*;

    /// [`tabulate`] at the default settings, no warnings before it.
    fn tab(runs: &[RunData], group_by: &[String], baseline: Option<&str>) -> Result<Comparison> {
        let settings = BootstrapSettings::default();
        tabulate(runs.to_vec(), group_by, baseline, &settings, Vec::new())
    }

    #[test]
    fn runs_that_differ_only_by_seed_form_a_group_in_order_of_first_run() {
        let mut runs = cells_by_seeds(&["lstm", "gru"], &[1, 2]);
        // Run order lstm-s1, gru-s1, lstm-s2, gru-s2: groups keep the first run's order.
        runs.swap(1, 2);
        for (i, r) in runs.iter_mut().enumerate() {
            let dir = format!("\"runs-{i}\"");
            r.report.spec.insert("experiment.runs_dir".into(), dir);
        }
        let t = tab(&runs, &[], None).unwrap();
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.differing, vec!["model.decoder.cell".to_string()]);
        assert_eq!(t.group_keys, t.differing);
        let labels: Vec<&str> = t.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(
            labels,
            ["model.decoder.cell=lstm", "model.decoder.cell=gru"]
        );
        assert_eq!(t.groups[0].runs, [0, 2]);
        assert_eq!(t.groups[1].runs, [1, 3]);
        assert_eq!(t.baseline, 0);
        // Wall time 10 and 20 s: mean 15, sample sd √50.
        let wall = &t.groups[1].summaries["wall_s"];
        assert_eq!((wall.n, wall.mean), (2, 15.0));
        assert!((wall.std.unwrap() - 50f64.sqrt()).abs() < 1e-12);
        // The frame: a row per run, the differing key and seed as columns, the group column
        // relabelled.
        let names: Vec<&str> = t
            .frame
            .get_column_names()
            .into_iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "run",
                "group",
                "dir",
                "model.decoder.cell",
                "seed",
                "BLEU-4",
                "best_epoch",
                "wall_s"
            ]
        );
        let group = t.frame.column("group").unwrap().str().unwrap();
        assert_eq!(group.get(1), Some("model.decoder.cell=gru"));
        assert_eq!(group.get(2), Some("model.decoder.cell=lstm"));
    }

    #[test]
    fn labels_name_only_what_differs_from_the_baseline() {
        let spec = |cell: &'static str, lr: &'static str| {
            vec![("model.decoder.cell", cell), ("train.lr", lr)]
        };
        let runs: Vec<RunData> = [
            ("base", spec("\"lstm\"", "0.001")),
            ("cell", spec("\"gru\"", "0.001")),
            ("lr", spec("\"lstm\"", "0.002")),
        ]
        .into_iter()
        .map(|(label, spec)| run(label, report(1, &spec, &[("CIDEr", 1.0)], 1.0)))
        .collect();
        let t = tab(&runs, &[], None).unwrap();
        let labels: Vec<&str> = t.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "model.decoder.cell=lstm, train.lr=0.001",
                "model.decoder.cell=gru",
                "train.lr=0.002"
            ]
        );
        // Another baseline: the labels are relative to it.
        let t = tab(&runs, &[], Some("lr")).unwrap();
        assert_eq!(t.baseline, 2);
        let labels: Vec<&str> = t.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "train.lr=0.001",
                "model.decoder.cell=gru, train.lr=0.001",
                "model.decoder.cell=lstm, train.lr=0.002"
            ]
        );
        // One group of identical specs is `all runs` before relabelling, `baseline` after.
        assert_eq!(group_label(&runs[0], &[]), "all runs");
        let same = cells_by_seeds(&["lstm"], &[1, 2]);
        let t = tab(&same, &[], None).unwrap();
        assert_eq!(t.groups.len(), 1);
        assert_eq!(t.groups[0].label, "baseline");
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn group_by_merges_checks_its_keys_and_warns_about_repeated_seeds() {
        let runs = cells_by_seeds(&["lstm", "gru"], &[1, 2]);
        let t = tab(&runs, &["train.lr".into()], None).unwrap();
        assert_eq!(t.groups.len(), 1);
        assert_eq!(t.groups[0].runs, [0, 1, 2, 3]);
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("same seed"), "{:?}", t.warnings);
        let err = tab(&runs, &["no.such.key".into()], None)
            .err()
            .expect("an unknown key")
            .to_string();
        assert!(
            err.starts_with("--group-by no.such.key: no run's spec"),
            "{err}"
        );
        let err = tab(&runs, &[], Some("nothing"))
            .err()
            .expect("an unknown baseline")
            .to_string();
        assert!(
            err.contains("groups: model.decoder.cell=lstm; model.decoder.cell=gru"),
            "{err}"
        );
    }

    #[test]
    fn metrics_come_in_the_papers_order_then_the_others() {
        let runs = vec![
            run("a", report(1, &[], &[("SPICE", 0.1), ("CIDEr", 0.2)], 1.0)),
            run(
                "b",
                report(1, &[], &[("BLEU-4", 0.1), ("BLEU-1", 0.3)], 1.0),
            ),
        ];
        assert_eq!(metric_names(&runs), ["BLEU-1", "BLEU-4", "CIDEr", "SPICE"]);
    }
}
