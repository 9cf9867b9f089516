//! Fixtures of compare's unit tests: runs made in memory (a report with a seed, spec values,
//! test metrics and a wall time; no files), and a comparison of them without a bootstrap.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::inputs::RunData;
use super::significance::BootstrapSettings;
use super::table::{self, Comparison};
use crate::report::Report;

/// A report with `seed`, spec values `spec` (as report.json writes them: strings quoted),
/// the model's test `metrics` and a total wall time of `wall_s`.
pub fn report(seed: u64, spec: &[(&str, &str)], metrics: &[(&str, f64)], wall_s: f64) -> Report {
    let spec: BTreeMap<&str, &str> = spec.iter().copied().collect();
    let metrics: BTreeMap<&str, f64> = metrics.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "experiment": "t",
        "run_dir": "runs/t",
        "started": "2026-01-01T00:00:00+00:00",
        "dataset": "shapes",
        "device": "cpu",
        "git_commit": "unknown",
        "seed": seed,
        "spec": spec,
        "encoder_weights": "none",
        "vocab_size": 10,
        "split_sizes": [1, 1, 1],
        "best_epoch": 2,
        "epochs": [],
        "test": [{"name": "model", "metrics": metrics}],
        "cider_over_blind": null,
        "samples": [],
        "diagnostics": {},
        "wall_time": {"prepare_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "total_s": wall_s},
    }))
    .expect("a report")
}

/// A run labelled `label` in the (absent) directory `runs/<label>` with `report`.
pub fn run(label: &str, report: Report) -> RunData {
    RunData {
        dir: PathBuf::from("runs").join(label),
        label: label.to_string(),
        report,
        history: Vec::new(),
    }
}

/// Runs `cell-s<seed>` of `model.decoder.cell` = each cell × each seed (cells slower), with
/// BLEU-4 = 0.1 × seed (+ 0.05 for `gru`) and a wall time of 10 × seed seconds.
pub fn cells_by_seeds(cells: &[&str], seeds: &[u64]) -> Vec<RunData> {
    let mut runs = Vec::new();
    for cell in cells {
        for &seed in seeds {
            let quoted = format!("\"{cell}\"");
            let seed_text = seed.to_string();
            let bonus = if *cell == "gru" { 0.05 } else { 0.0 };
            let r = report(
                seed,
                &[
                    ("model.decoder.cell", &quoted),
                    ("experiment.seed", &seed_text),
                    ("train.lr", "0.001"),
                ],
                &[("BLEU-4", 0.1 * seed as f64 + bonus)],
                10.0 * seed as f64,
            );
            runs.push(run(&format!("{cell}-s{seed}"), r));
        }
    }
    runs
}

/// The comparison of `runs` grouped as `caplab compare` groups them (by `group_by`, or by the
/// keys that differ), baseline the first group, no significance.
pub fn comparison(runs: Vec<RunData>, group_by: &[String]) -> Comparison {
    let settings = BootstrapSettings::default();
    let mut c = table::tabulate(runs, group_by, None, &settings, Vec::new()).expect("a table");
    c.markdown = c.to_markdown();
    c
}
