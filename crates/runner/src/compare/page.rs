//! compare.html: one self-contained page (no JavaScript) with the group and significance
//! tables and the spec diff (the cells of compare.md, from [`super::output`]), per-epoch
//! validation curves of every run as inline SVG (one `<svg>` per validation metric), and a
//! gallery of the same test images captioned by each group (thumbnails embedded as base64 JPEG
//! when the dataset's image files are found).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::inputs::{read_captions, read_image_files, read_refs, RunData};
use super::output::{group_table, run_table, significance_table, spec_table, Table};
use super::table::Comparison;
use crate::html::{colour, esc, line_plot, thumbnail, Series};

/// Images in the gallery.
pub const GALLERY_IMAGES: usize = 8;

/// An HTML table, every cell escaped.
fn table(s: &mut String, t: &Table) {
    s.push_str("<table>\n<tr>");
    for h in &t.header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>\n");
    for r in &t.rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

/// The page.
pub fn page(c: &Comparison) -> String {
    let mut s = String::new();
    s.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>caplab compare</title>\n<style>\n\
         body{font-family:sans-serif;margin:1.5em;max-width:100em}\n\
         table{border-collapse:collapse;margin:0.5em 0 1.5em}\n\
         th,td{border:1px solid #ccc;padding:0.25em 0.5em;font-size:0.9em;vertical-align:top}\n\
         th{background:#f3f3f3}\n.swatch{display:inline-block;width:1em;height:0.6em;margin-right:0.3em}\n\
         .plots{display:flex;flex-wrap:wrap;gap:1em}\n.gallery img{max-width:160px}\n\
         .refs{color:#666;font-size:0.85em}\n</style>\n</head>\n<body>\n",
    );
    s.push_str("<h1>caplab compare</h1>\n");
    let _ = writeln!(
        s,
        "<p>{} runs in {} groups; baseline: <b>{}</b>.</p>",
        c.runs.len(),
        c.groups.len(),
        esc(&c.groups[c.baseline].label)
    );
    if !c.warnings.is_empty() {
        s.push_str("<ul class=\"warnings\">\n");
        for w in &c.warnings {
            let _ = writeln!(s, "<li>{}</li>", esc(w));
        }
        s.push_str("</ul>\n");
    }

    s.push_str("<h2>Groups (test metrics)</h2>\n");
    table(&mut s, &group_table(c));

    if !c.significance.is_empty() {
        let _ = writeln!(
            s,
            "<h2>Against the baseline ({})</h2>",
            esc(&c.groups[c.baseline].label)
        );
        table(&mut s, &significance_table(c));
    }

    s.push_str("<h2>Runs</h2>\n");
    table(&mut s, &run_table(c));

    s.push_str("<h2>Spec keys that differ</h2>\n");
    match spec_table(c) {
        None => s.push_str("<p>The runs have the same spec.</p>\n"),
        Some(t) => table(&mut s, &t),
    }

    s.push_str("<h2>Validation curves</h2>\n<p>");
    for (g, group) in c.groups.iter().enumerate() {
        let _ = write!(
            s,
            "<span class=\"swatch\" style=\"background:{}\"></span>{} &nbsp; ",
            colour(g),
            esc(&group.label)
        );
    }
    s.push_str("</p>\n<div class=\"plots\">\n");
    let group_of: Vec<usize> = (0..c.runs.len())
        .map(|i| {
            c.groups
                .iter()
                .position(|g| g.runs.contains(&i))
                .unwrap_or(0)
        })
        .collect();
    for metric in curve_metrics(&c.runs) {
        s.push_str(&curve_svg(&metric, &c.runs, &group_of));
    }
    s.push_str("</div>\n");

    s.push_str("<h2>Gallery (test images)</h2>\n");
    s.push_str(&gallery(c));

    s.push_str("<h2>Notes</h2>\n<ol>\n");
    for f in c.footnotes() {
        let _ = writeln!(s, "<li>{}</li>", esc(&f));
    }
    s.push_str("</ol>\n</body>\n</html>\n");
    s
}

/// Validation metrics recorded in any run's history, loss first.
pub fn curve_metrics(runs: &[RunData]) -> Vec<String> {
    let all: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.history.iter().flat_map(|e| e.valid.keys().cloned()))
        .collect();
    let mut v: Vec<String> = all.iter().filter(|k| *k == "Loss").cloned().collect();
    v.extend(all.into_iter().filter(|k| k != "Loss"));
    v
}

/// One plot: validation `metric` per epoch, a line per run coloured by its group.
fn curve_svg(metric: &str, runs: &[RunData], group_of: &[usize]) -> String {
    let series: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            label: r.label.clone(),
            colour: colour(group_of[i]),
            points: r
                .history
                .iter()
                .filter_map(|e| {
                    e.valid
                        .get(metric)
                        .filter(|v| v.is_finite())
                        .map(|v| (e.epoch as f64, *v))
                })
                .collect(),
        })
        .collect();
    line_plot(&format!("validation {metric}"), "epoch", &series)
}

/// Test captions of a run directory by image id (empty when unreadable).
fn captions_of(dir: &Path) -> BTreeMap<String, String> {
    read_captions(dir).unwrap_or_default()
}

/// The image file `name` (a test image's file name) of a run, if the dataset is where its spec
/// says.
fn find_image(r: &RunData, name: &str) -> Option<PathBuf> {
    let root = PathBuf::from(r.spec_value("data.root")?);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = r.spec_value("data.images_dir") {
        dirs.push(root.join(d));
    }
    for sub in [
        "images",
        "Images",
        "val2014",
        "train2014",
        "val2017",
        "train2017",
        "",
    ] {
        dirs.push(root.join(sub));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The gallery: the first [`GALLERY_IMAGES`] test images that every group captioned, a column
/// per group with each of its runs' captions.
fn gallery(c: &Comparison) -> String {
    let caps: Vec<BTreeMap<String, String>> = c.runs.iter().map(|r| captions_of(&r.dir)).collect();
    let mut common: Option<BTreeSet<&String>> = None;
    for g in &c.groups {
        let ids: BTreeSet<&String> = g.runs.iter().flat_map(|i| caps[*i].keys()).collect();
        common = Some(match common {
            None => ids,
            Some(prev) => prev.intersection(&ids).copied().collect(),
        });
    }
    // Prefer the report's sample images (the ones its report.md shows), then id order. With
    // COCO's integer ids, `refs.json` maps each id to its file (the samples' name).
    let common = common.unwrap_or_default();
    let base = &c.runs[c.groups[c.baseline].runs[0]];
    let files = read_image_files(&base.dir).unwrap_or_default();
    let id_of_file: BTreeMap<&str, &String> =
        files.iter().map(|(id, f)| (f.name.as_str(), id)).collect();
    let mut ids: Vec<&String> = base
        .report
        .samples
        .iter()
        .filter_map(|s| {
            let id = id_of_file
                .get(s.image.as_str())
                .copied()
                .unwrap_or(&s.image);
            common.get(id).copied()
        })
        .collect();
    for id in common.iter().copied() {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.truncate(GALLERY_IMAGES);
    if ids.is_empty() {
        return "<p>No test image has captions from every group (captions.json).</p>\n".into();
    }
    let refs = read_refs(&base.dir).unwrap_or_default();
    let mut s = String::from("<table class=\"gallery\">\n<tr><th>image</th>");
    for g in &c.groups {
        let _ = write!(s, "<th>{}</th>", esc(&g.label));
    }
    s.push_str("</tr>\n");
    for id in ids {
        s.push_str("<tr><td>");
        let file = files.get(id.as_str());
        let image = file
            .and_then(|f| f.path.clone())
            .filter(|p| p.is_file())
            .or_else(|| find_image(base, file.map_or(id.as_str(), |f| f.name.as_str())));
        if let Some(uri) = image.and_then(|p| thumbnail(&p)) {
            let _ = write!(s, "<img src=\"{uri}\" alt=\"{}\"><br>", esc(id));
        }
        let _ = write!(s, "<b>{}</b>", esc(id));
        if let Some(rs) = refs.get(id.as_str()) {
            s.push_str("<div class=\"refs\">");
            for r in rs {
                let _ = write!(s, "{}<br>", esc(r));
            }
            s.push_str("</div>");
        }
        s.push_str("</td>");
        for g in &c.groups {
            s.push_str("<td>");
            for i in &g.runs {
                if let Some(cap) = caps[*i].get(id.as_str()) {
                    let _ = write!(
                        s,
                        "<div><small>seed {}</small> {}</div>",
                        c.runs[*i].seed(),
                        esc(cap)
                    );
                }
            }
            s.push_str("</td>");
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::fixtures::{cells_by_seeds, comparison};
    use super::*;
    use crate::history::EpochRecord;

    #[test]
    fn the_page_escapes_its_cells_plots_each_validation_metric_and_says_when_specs_agree() {
        let mut runs = cells_by_seeds(&["lstm"], &[1]);
        runs[0].label = "<i>run</i>".into();
        runs[0].history = (1..=2)
            .map(|epoch| EpochRecord {
                epoch,
                phase: "xe".into(),
                step: epoch,
                lr: 1e-3,
                train: BTreeMap::new(),
                valid: BTreeMap::from([
                    ("CIDEr".to_string(), 0.1 * epoch as f64),
                    ("BLEU-4".to_string(), 0.05 * epoch as f64),
                    ("Loss".to_string(), 3.0 / epoch as f64),
                ]),
                wall_s: 1.0,
                cpu_s: None,
            })
            .collect();
        assert_eq!(curve_metrics(&runs), ["Loss", "BLEU-4", "CIDEr"]);
        let c = comparison(runs, &[]);
        let p = page(&c);
        assert!(p.contains("<td>&lt;i&gt;run&lt;/i&gt;</td>"), "{p}");
        assert!(!p.contains("<i>run</i>"));
        assert!(p.contains("<h2>Spec keys that differ</h2>\n<p>The runs have the same spec.</p>"));
        assert!(
            !p.contains("Against the baseline"),
            "one group: no differences"
        );
        assert_eq!(p.matches("<table>").count(), 2, "groups and runs");
        assert_eq!(p.matches("<svg").count(), 3, "a plot per validation metric");
        assert!(p.contains("No test image has captions from every group"));
        assert_eq!(p.matches("<li>").count(), 4, "the footnotes");
    }
}
