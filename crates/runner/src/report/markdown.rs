//! `report.md`: a report as Markdown for humans.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::contents::{Report, COLUMNS};

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into())
}

fn metric_value(m: &BTreeMap<String, f64>, col: &str) -> Option<(String, f64)> {
    if let Some(v) = m.get(col) {
        return Some((col.to_string(), *v));
    }
    // METEOR may be labelled METEOR(exact+stem) when the synonym resources are absent.
    m.iter()
        .find(|(k, _)| k.starts_with(col) && col == "METEOR")
        .map(|(k, v)| (k.clone(), *v))
}

fn metrics_table(rows: &[(String, &BTreeMap<String, f64>)]) -> String {
    let mut header: Vec<String> = vec!["system".into()];
    for col in COLUMNS {
        let label = rows
            .iter()
            .find_map(|(_, m)| metric_value(m, col).map(|(k, _)| k))
            .unwrap_or_else(|| col.to_string());
        header.push(label);
    }
    let mut s = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for (name, m) in rows {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| {
                metric_value(m, c)
                    .map(|(_, v)| format!("{v:.4}"))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        let _ = writeln!(s, "| {name} | {} |", cells.join(" | "));
    }
    s
}

impl Report {
    /// Markdown for humans.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# caplab report: {}\n", self.experiment);
        let _ = writeln!(s, "- run: `{}`", self.run_dir.display());
        let _ = writeln!(s, "- started: {}", self.started);
        let _ = writeln!(s, "- dataset: {}", self.dataset);
        let _ = writeln!(
            s,
            "- images: {} train / {} val / {} test; vocabulary {} words",
            self.split_sizes[0], self.split_sizes[1], self.split_sizes[2], self.vocab_size
        );
        let _ = writeln!(s, "- device: {}", self.device);
        let _ = writeln!(s, "- git commit: {}", self.git_commit);
        let _ = writeln!(s, "- seed: {}", self.seed);
        let _ = writeln!(s, "- encoder weights: {}", self.encoder_weights);
        if let Some(c) = &self.feature_cache {
            let _ = writeln!(
                s,
                "- frozen-encoder features: `{}` ({} images, {})",
                c.path.display(),
                c.images,
                if c.built {
                    "encoded by this run"
                } else {
                    "reused from the cache"
                }
            );
        }
        let _ = writeln!(
            s,
            "- wall time: {:.1} s (prepare {:.1} s, train {:.1} s, eval {:.1} s)",
            self.wall_time.total_s,
            self.wall_time.prepare_s,
            self.wall_time.train_s,
            self.wall_time.eval_s
        );
        let _ = writeln!(
            s,
            "- evaluated checkpoint: epoch {} (best validation {})\n",
            self.best_epoch,
            self.spec
                .get("train.select_metric")
                .map(|m| m.trim_matches('"').to_string())
                .unwrap_or_else(|| "CIDEr".into())
        );
        let _ = writeln!(s, "## Test metrics (pycocoevalcap definitions)\n");
        let rows: Vec<(String, &BTreeMap<String, f64>)> = self
            .test
            .iter()
            .map(|t| (t.name.clone(), &t.metrics))
            .collect();
        s.push_str(&metrics_table(&rows));
        if !self.metric_signature.is_empty() {
            let _ = writeln!(s, "\nMetric signature: `{}`", self.metric_signature);
        }
        if let Some(r) = self.cider_over_blind {
            let _ = writeln!(
                s,
                "\nThe model's CIDEr is {r:.2}× the best image-blind row: that is what looking at the image buys.\n"
            );
        }
        let _ = writeln!(s, "## Training\n");
        // An SCST run adds the phase and the mean reward (its train loss is the policy loss).
        let scst = self
            .epochs
            .iter()
            .any(|e| e.phase.as_deref() == Some("scst"));
        let _ = writeln!(
            s,
            "| epoch | lr | train loss | val loss | val BLEU-4 | val CIDEr | time (s) | CPU % |{}",
            if scst { " phase | train reward |" } else { "" }
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|{}",
            if scst { "---|---|" } else { "" }
        );
        for e in &self.epochs {
            let lr = e.lr.map_or_else(|| "–".to_string(), |v| format!("{v:.3e}"));
            let extra = if scst {
                format!(
                    " {} | {} |",
                    e.phase.as_deref().unwrap_or("xe"),
                    fmt_opt(e.train_reward)
                )
            } else {
                String::new()
            };
            let timing = self.epoch_times.iter().find(|t| t.epoch == e.epoch);
            let time = timing.map_or_else(|| "–".to_string(), |t| format!("{:.1}", t.wall_s));
            let cpu = timing
                .and_then(|t| t.cpu_percent)
                .map_or_else(|| "–".to_string(), |v| format!("{v:.0}"));
            let _ = writeln!(
                s,
                "| {} | {lr} | {} | {} | {} | {} | {time} | {cpu} |{extra}",
                e.epoch,
                fmt_opt(e.train_loss),
                fmt_opt(e.val_loss),
                fmt_opt(e.val_bleu4),
                fmt_opt(e.val_cider)
            );
        }
        let _ = writeln!(s, "\n## Spec key values\n");
        for (k, v) in &self.spec {
            let _ = writeln!(s, "- `{k}` = {v}");
        }
        let _ = writeln!(s, "\n## Sample captions (test split)\n");
        for smp in &self.samples {
            let _ = writeln!(s, "**{}** — model: *{}*", smp.image, smp.caption);
            if let Some(a) = &smp.attention {
                let _ = writeln!(s, "\n![attention of {}]({a})\n", smp.image);
            }
            for r in &smp.references {
                let _ = writeln!(s, "  - {r}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Decoding diagnostics\n");
        let _ = writeln!(
            s,
            "```json\n{}\n```",
            serde_json::to_string_pretty(&self.diagnostics).unwrap_or_default()
        );
        s
    }
}
