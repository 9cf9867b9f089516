//! compare.html: one self-contained page (no JavaScript) with the group and significance
//! tables, the spec diff, per-epoch validation curves of every run as inline SVG (one `<svg>`
//! per validation metric), and a gallery of the same test images captioned by each group
//! (thumbnails embedded as base64 JPEG when the dataset's image files are found).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{fmt_difference, fmt_summary, Comparison, RunData};
use crate::html::{colour, esc, line_plot, thumbnail, Series};

/// Images in the gallery.
pub const GALLERY_IMAGES: usize = 8;

fn table(s: &mut String, header: &[String], rows: &[Vec<String>]) {
    s.push_str("<table>\n<tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>\n");
    for r in rows {
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
    let mut header = vec!["group".to_string(), "n".into(), "seeds".into()];
    header.extend(c.metrics.iter().cloned());
    header.push("wall s".into());
    let rows: Vec<Vec<String>> = c
        .groups
        .iter()
        .map(|g| {
            let mut r = vec![g.label.clone(), g.runs.len().to_string(), c.seeds(g)];
            r.extend(c.metrics.iter().map(|m| fmt_summary(g.summaries.get(m), 4)));
            r.push(fmt_summary(g.summaries.get("wall_s"), 1));
            r
        })
        .collect();
    table(&mut s, &header, &rows);

    if !c.significance.is_empty() {
        let _ = writeln!(
            s,
            "<h2>Against the baseline ({})</h2>",
            esc(&c.groups[c.baseline].label)
        );
        let mut header = vec!["group".to_string(), "pairing".into(), "images".into()];
        header.extend(c.metrics.iter().cloned());
        let rows: Vec<Vec<String>> = c
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
        table(&mut s, &header, &rows);
    }

    s.push_str("<h2>Runs</h2>\n");
    let mut header = vec!["run".to_string(), "group".into(), "seed".into()];
    header.extend(c.metrics.iter().cloned());
    header.extend(["best epoch".to_string(), "wall s".into()]);
    let rows: Vec<Vec<String>> = c
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
    table(&mut s, &header, &rows);

    s.push_str("<h2>Spec keys that differ</h2>\n");
    let mut keys = c.differing.clone();
    if c.runs.iter().any(|r| r.seed() != c.runs[0].seed()) {
        keys.push("experiment.seed".into());
    }
    if keys.is_empty() {
        s.push_str("<p>The runs have the same spec.</p>\n");
    } else {
        let mut header = vec!["key".to_string()];
        header.extend(c.runs.iter().map(|r| r.label.clone()));
        let rows: Vec<Vec<String>> = keys
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
        table(&mut s, &header, &rows);
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
    super::read_captions(dir).unwrap_or_default()
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
    let files = super::read_image_files(&base.dir).unwrap_or_default();
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
    let refs = super::read_refs(&base.dir).unwrap_or_default();
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
