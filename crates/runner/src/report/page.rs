//! `report.html`: a run's (or an eval's) report as one self-contained page, readable without
//! JavaScript — test metrics with the image-blind rows and 95% bootstrap intervals, the epoch
//! curves of the run history (inline SVG), and a gallery of test images (embedded thumbnails)
//! with the generated caption, the references and per-image CIDEr: the first samples, then the
//! best and the worst [`EXTREMES`] by CIDEr, with attention overlays when the decoder has them.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::history::EpochRecord;
use crate::html::{colour, esc, line_plot, thumbnail, Series};
use crate::report::contents::{Report, COLUMNS};

/// Images in each of the best and worst lists.
pub const EXTREMES: usize = 8;

/// A test image as the gallery shows it.
#[derive(Clone, Debug)]
pub struct GalleryItem {
    /// Image id (file name).
    pub id: String,
    /// The image file, for the thumbnail.
    pub path: PathBuf,
    /// The model's caption.
    pub caption: String,
    /// Reference captions.
    pub references: Vec<String>,
    /// Per-image CIDEr-D of the model's caption.
    pub cider: Option<f64>,
    /// Attention overlay, relative to the report's directory.
    pub attention: Option<String>,
}

/// The page for `report`, its run history and its test images (in split order).
pub fn page(report: &Report, history: &[EpochRecord], gallery: &[GalleryItem]) -> String {
    let mut s = String::new();
    let title = format!("caplab report: {}", report.experiment);
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\nbody {{ font-family: sans-serif; margin: 1.5em; max-width: 1200px; }}\n\
         table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 3px 7px; font-size: 13px; text-align: left; vertical-align: top; }}\n\
         td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         .ci {{ color: #666; font-size: 11px; }}\n\
         .plots svg {{ margin: 0 12px 12px 0; }}\n\
         .card {{ display: inline-block; width: 270px; margin: 0 10px 14px 0; vertical-align: top; font-size: 12px; }}\n\
         .card img.thumb {{ width: 160px; height: auto; display: block; }}\n\
         .card img.att {{ max-width: 270px; display: block; margin-top: 4px; }}\n\
         .cap {{ font-weight: bold; margin: 4px 0; }}\n\
         .refs {{ color: #444; margin: 0; padding-left: 16px; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(
        s,
        "<p>{} · dataset {} · device {} · seed {} · commit {} · started {} · evaluated epoch {} · {:.0} s</p>",
        esc(&report.run_dir.display().to_string()),
        esc(&report.dataset),
        esc(&report.device),
        report.seed,
        esc(&report.git_commit),
        esc(&report.started),
        report.best_epoch,
        report.wall_time.total_s
    );
    metrics_table(&mut s, report);
    curves(&mut s, history);
    galleries(&mut s, gallery);
    s.push_str("</body>\n</html>\n");
    s
}

fn metrics_table(s: &mut String, report: &Report) {
    s.push_str("<h2>Test metrics</h2>\n<table>\n<tr><th>system</th>");
    let columns: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| report.test.iter().any(|t| t.metrics.contains_key(*c)))
        .chain(
            report
                .test
                .first()
                .into_iter()
                .flat_map(|t| t.metrics.keys().map(String::as_str))
                .filter(|k| !COLUMNS.contains(k)),
        )
        .collect();
    for c in &columns {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
    for row in &report.test {
        let _ = write!(s, "<tr><td>{}</td>", esc(&row.name));
        for c in &columns {
            match row.metrics.get(*c) {
                Some(v) => {
                    let ci = row
                        .intervals
                        .get(*c)
                        .map(|i| {
                            format!(
                                "<br><span class=\"ci\">[{:.4}, {:.4}]</span>",
                                i.lower, i.upper
                            )
                        })
                        .unwrap_or_default();
                    let _ = write!(s, "<td class=\"num\">{v:.4}{ci}</td>");
                }
                None => s.push_str("<td>–</td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    if let Some(r) = report.cider_over_blind {
        let _ = writeln!(
            s,
            "<p>The model's CIDEr is <b>{r:.2}×</b> the best image-blind row.</p>"
        );
    }
    let _ = writeln!(
        s,
        "<p class=\"ci\">[…]: 95% bootstrap interval over the test images (1000 resamples). \
         Metric signature: <code>{}</code></p>",
        esc(&report.metric_signature)
    );
}

fn curves(s: &mut String, history: &[EpochRecord]) {
    if history.is_empty() {
        return;
    }
    s.push_str("<h2>Training</h2>\n<div class=\"plots\">\n");
    let mut metrics: Vec<String> = Vec::new();
    for e in history {
        for k in e.valid.keys() {
            if !metrics.contains(k) {
                metrics.push(k.clone());
            }
        }
    }
    let series = |split: &str, name: &str, c: usize| Series {
        label: format!("{split} {name}"),
        colour: colour(c),
        points: history
            .iter()
            .filter_map(|e| {
                let m = if split == "train" { &e.train } else { &e.valid };
                m.get(name)
                    .filter(|v| v.is_finite())
                    .map(|v| (e.epoch as f64, *v))
            })
            .collect(),
    };
    s.push_str(&line_plot(
        "loss (train, valid)",
        "epoch",
        &[series("train", "Loss", 0), series("valid", "Loss", 1)],
    ));
    for (i, m) in metrics.iter().filter(|m| *m != "Loss").enumerate() {
        s.push_str(&line_plot(
            &format!("validation {m}"),
            "epoch",
            &[series("valid", m, i + 2)],
        ));
    }
    s.push_str(
        "</div>\n<table>\n<tr><th>epoch</th><th>lr</th><th>train loss</th><th>val loss</th>",
    );
    let others: Vec<&String> = metrics.iter().filter(|m| *m != "Loss").collect();
    for m in &others {
        let _ = write!(s, "<th>val {}</th>", esc(m));
    }
    s.push_str("</tr>\n");
    let cell = |v: Option<&f64>| {
        v.map(|x| format!("<td class=\"num\">{x:.4}</td>"))
            .unwrap_or_else(|| "<td>–</td>".into())
    };
    for e in history {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{:.3e}</td>{}{}",
            e.epoch,
            e.lr,
            cell(e.train.get("Loss")),
            cell(e.valid.get("Loss"))
        );
        for m in &others {
            s.push_str(&cell(e.valid.get(*m)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

fn card(s: &mut String, item: &GalleryItem) {
    s.push_str("<div class=\"card\">");
    match thumbnail(&item.path) {
        Some(uri) => {
            let _ = write!(
                s,
                "<img class=\"thumb\" src=\"{uri}\" alt=\"{}\">",
                esc(&item.id)
            );
        }
        None => {
            let _ = write!(s, "<div>(image {} not readable)</div>", esc(&item.id));
        }
    }
    let cider = item
        .cider
        .map(|c| format!(" · CIDEr {c:.3}"))
        .unwrap_or_default();
    let _ = write!(
        s,
        "<div>{}{cider}</div><div class=\"cap\">{}</div><ul class=\"refs\">",
        esc(&item.id),
        esc(&item.caption)
    );
    for r in &item.references {
        let _ = write!(s, "<li>{}</li>", esc(r));
    }
    s.push_str("</ul>");
    if let Some(a) = &item.attention {
        let _ = write!(
            s,
            "<img class=\"att\" src=\"{}\" alt=\"attention of {}\">",
            esc(a),
            esc(&item.id)
        );
    }
    s.push_str("</div>\n");
}

fn galleries(s: &mut String, gallery: &[GalleryItem]) {
    if gallery.is_empty() {
        return;
    }
    s.push_str("<h2>Test images</h2>\n<h3>First images of the split</h3>\n");
    for item in gallery.iter().take(EXTREMES) {
        card(s, item);
    }
    let mut scored: Vec<&GalleryItem> = gallery.iter().filter(|g| g.cider.is_some()).collect();
    // Highest CIDEr first; ties by id so the page is reproducible.
    scored.sort_by(|a, b| {
        b.cider
            .partial_cmp(&a.cider)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.id.cmp(&b.id))
    });
    if scored.len() > EXTREMES {
        let _ = writeln!(s, "<h3>Best {EXTREMES} by CIDEr</h3>");
        for item in scored.iter().take(EXTREMES) {
            card(s, item);
        }
        let _ = writeln!(s, "<h3>Worst {EXTREMES} by CIDEr</h3>");
        for item in scored.iter().rev().take(EXTREMES) {
            card(s, item);
        }
    }
}
