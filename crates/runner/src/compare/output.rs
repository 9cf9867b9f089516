//! compare.md, and the pieces compare.html shares with it: the comparison's tables as text
//! cells (groups, differences against the baseline, runs, the spec keys that differ), the cell
//! formats (`mean ± sd [lo, hi]`, `+0.0123 [0.0050, 0.0190] p=0.002`) and the footnotes.

use std::fmt::Write as _;

use super::significance::{Difference, Summary, ALPHA};
use super::table::Comparison;

/// A summary cell: `mean ± sd [lo, hi]` with `digits` decimals, the mean alone for one run,
/// `–` for none.
pub fn fmt_summary(s: Option<&Summary>, digits: usize) -> String {
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

/// A table as text cells, before it is written as markdown or HTML.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<String>>,
}

/// Groups (test metrics): a row per group with its size, seeds, each metric's summary and its
/// wall time.
pub fn group_table(c: &Comparison) -> Table {
    let mut header = vec!["group".to_string(), "n".into(), "seeds".into()];
    header.extend(c.metrics.iter().cloned());
    header.push("wall s".into());
    let rows = c
        .groups
        .iter()
        .map(|g| {
            let mut r = vec![g.label.clone(), g.runs.len().to_string(), c.seeds(g)];
            r.extend(c.metrics.iter().map(|m| fmt_summary(g.summaries.get(m), 4)));
            r.push(fmt_summary(g.summaries.get("wall_s"), 1));
            r
        })
        .collect();
    Table { header, rows }
}

/// Against the baseline: a row per other group with its pairing, the images resampled and the
/// difference of each metric (or why there is none).
pub fn significance_table(c: &Comparison) -> Table {
    let mut header = vec!["group".to_string(), "pairing".into(), "images".into()];
    header.extend(c.metrics.iter().cloned());
    let rows = c
        .significance
        .iter()
        .map(|sig| {
            let mut r = vec![
                c.groups[sig.group].label.clone(),
                sig.pairing.clone(),
                sig.images.to_string(),
            ];
            r.extend(c.metrics.iter().map(|m| match sig.diffs.get(m) {
                Some(d) => fmt_difference(d),
                None => sig.note.clone().unwrap_or_else(|| "–".into()),
            }));
            r
        })
        .collect();
    Table { header, rows }
}

/// Runs: a row per run with its group, seed, each test metric, best epoch and wall time.
pub fn run_table(c: &Comparison) -> Table {
    let mut header = vec!["run".to_string(), "group".into(), "seed".into()];
    header.extend(c.metrics.iter().cloned());
    header.extend(["best epoch".to_string(), "wall s".into()]);
    let rows = c
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let m = r.metrics();
            let mut row = vec![
                r.label.clone(),
                c.group_of(i).to_string(),
                r.seed().to_string(),
            ];
            row.extend(
                c.metrics
                    .iter()
                    .map(|k| m.get(k).map_or_else(|| "–".into(), |v| format!("{v:.4}"))),
            );
            row.push(r.report.best_epoch.to_string());
            row.push(format!("{:.1}", r.report.wall_time.total_s));
            row
        })
        .collect();
    Table { header, rows }
}

/// Spec keys that differ: a row per key (the differing keys, then `experiment.seed` when the
/// seeds differ), a column per run; `None` when the runs have the same spec.
pub fn spec_table(c: &Comparison) -> Option<Table> {
    let mut keys = c.differing.clone();
    if c.runs.iter().any(|r| r.seed() != c.runs[0].seed()) {
        keys.push("experiment.seed".into());
    }
    if keys.is_empty() {
        return None;
    }
    let mut header = vec!["key".to_string()];
    header.extend(c.runs.iter().map(|r| r.label.clone()));
    let rows = keys
        .iter()
        .map(|k| {
            let mut r = vec![k.clone()];
            r.extend(
                c.runs
                    .iter()
                    .map(|run| run.spec_value(k).unwrap_or_else(|| "–".into())),
            );
            r
        })
        .collect();
    Some(Table { header, rows })
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
        markdown_table(&mut s, &group_table(self));
        if !self.significance.is_empty() {
            let _ = writeln!(
                s,
                "\n## Against the baseline ({})\n",
                self.groups[self.baseline].label
            );
            markdown_table(&mut s, &significance_table(self));
        }
        let _ = writeln!(s, "\n## Runs\n");
        markdown_table(&mut s, &run_table(self));
        if let Some(mut t) = spec_table(self) {
            let _ = writeln!(s, "\n## Spec keys that differ\n");
            for row in &mut t.rows {
                row[0] = format!("`{}`", row[0]);
            }
            markdown_table(&mut s, &t);
        }
        let _ = writeln!(s, "\n---\n");
        for (i, f) in self.footnotes().iter().enumerate() {
            let _ = writeln!(s, "{}. {f}", i + 1);
        }
        s
    }
}

/// A markdown table: the header as given, `|` in cells escaped.
fn markdown_table(s: &mut String, t: &Table) {
    let _ = writeln!(s, "| {} |", t.header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(t.header.len()));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::fixtures::{cells_by_seeds, comparison};
    use super::super::significance::Significance;
    use super::*;

    #[test]
    fn cells_show_mean_sd_interval_and_differences_with_their_mark() {
        let s = Summary {
            n: 3,
            mean: 12.0,
            std: Some(2.0),
            ci: Some((7.0, 17.0)),
        };
        assert_eq!(fmt_summary(Some(&s), 1), "12.0 ± 2.0 [7.0, 17.0]");
        let one = Summary {
            n: 1,
            mean: 0.25,
            std: None,
            ci: None,
        };
        assert_eq!(fmt_summary(Some(&one), 4), "0.2500");
        assert_eq!(fmt_summary(None, 4), "–");
        let d = Difference {
            estimate: 0.0123,
            lower: 0.005,
            upper: 0.019,
            p_value: 0.002,
        };
        assert_eq!(fmt_difference(&d), "+0.0123 [+0.0050, +0.0190] p=0.002");
        let ns = Difference {
            estimate: -0.01,
            lower: -0.03,
            upper: 0.01,
            p_value: ALPHA,
        };
        assert_eq!(
            fmt_difference(&ns),
            "-0.0100 [-0.0300, +0.0100] p=0.050 n.s."
        );
    }

    #[test]
    fn markdown_has_its_sections_in_order_and_a_row_per_group_run_and_key() {
        let mut c = comparison(cells_by_seeds(&["lstm", "gru"], &[1, 2]), &[]);
        c.runs[0].label = "lstm|s1".into();
        c.significance = vec![Significance {
            group: 1,
            pairing: "by seed (2 pairs)".into(),
            images: 30,
            diffs: BTreeMap::from([(
                "BLEU-4".to_string(),
                Difference {
                    estimate: 0.0123,
                    lower: 0.005,
                    upper: 0.019,
                    p_value: 0.002,
                },
            )]),
            note: None,
        }];
        let md = c.to_markdown();
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            headings,
            [
                "# caplab compare",
                "## Groups (test metrics)",
                "## Against the baseline (model.decoder.cell=lstm)",
                "## Runs",
                "## Spec keys that differ"
            ]
        );
        let lines: Vec<&str> = md.lines().collect();
        assert!(lines.contains(
            &"4 runs in 2 groups (grouped by `model.decoder.cell`); baseline: **model.decoder.cell=lstm**."
        ));
        for line in [
            "| group | n | seeds | BLEU-4 | wall s |",
            "|---|---|---|---|---|",
            "| model.decoder.cell=gru | by seed (2 pairs) | 30 | +0.0123 [+0.0050, +0.0190] p=0.002 |",
            "| run | group | seed | BLEU-4 | best epoch | wall s |",
            "| lstm\\|s1 | model.decoder.cell=lstm | 1 | 0.1000 | 2 | 10.0 |",
            "| gru-s2 | model.decoder.cell=gru | 2 | 0.2500 | 2 | 20.0 |",
            "| `model.decoder.cell` | lstm | lstm | gru | gru |",
            "| `experiment.seed` | 1 | 2 | 1 | 2 |",
        ] {
            assert!(lines.contains(&line), "no line {line:?} in\n{md}");
        }
        let groups = lines
            .iter()
            .filter(|l| l.starts_with("| model.decoder.cell=") && l.contains(" | 1, 2 | "))
            .count();
        assert_eq!(groups, 2, "a group row per group");
        let (_, notes) = md.split_once("\n---\n\n").expect("footnotes");
        let numbers: Vec<&str> = notes
            .lines()
            .map(|l| l.split_once(". ").map_or("", |(n, _)| n))
            .collect();
        assert_eq!(numbers, ["1", "2", "3", "4"]);
        assert!(notes.contains("1000 resamples, seed 12345"), "{notes}");
    }
}
