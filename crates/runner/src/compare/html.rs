//! compare.html: one self-contained page (no JavaScript) with the group and significance
//! tables, the spec diff, per-epoch validation curves of every run as inline SVG (one `<svg>`
//! per validation metric), and a gallery of the same test images captioned by each group
//! (thumbnails embedded as base64 JPEG when the dataset's image files are found).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{fmt_difference, fmt_summary, group_label, Comparison, RunData};

/// Images in the gallery.
pub const GALLERY_IMAGES: usize = 8;

/// Line colours of groups (colour-blind-safe palette), cycled.
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn colour(group: usize) -> &'static str {
    PALETTE[group % PALETTE.len()]
}

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
        .map(|r| {
            let m = r.metrics();
            let mut row = vec![
                r.label.clone(),
                group_label(r, &c.group_keys),
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
    let (w, h) = (420.0, 260.0);
    let (left, right, top, bottom) = (56.0, 12.0, 28.0, 36.0);
    let series: Vec<(usize, Vec<(f64, f64)>)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let pts = r
                .history
                .iter()
                .filter_map(|e| {
                    e.valid
                        .get(metric)
                        .filter(|v| v.is_finite())
                        .map(|v| (e.epoch as f64, *v))
                })
                .collect();
            (i, pts)
        })
        .collect();
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let x_max = xs.fold(1.0f64, f64::max).max(2.0);
    let (mut y_min, mut y_max) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    if y_max - y_min < 1e-12 {
        y_min -= 0.5;
        y_max += 0.5;
    }
    let pad = (y_max - y_min) * 0.05;
    let (y_min, y_max) = (y_min - pad, y_max + pad);
    let px = |x: f64| left + (x - 1.0) / (x_max - 1.0) * (w - left - right);
    let py = |y: f64| top + (y_max - y) / (y_max - y_min) * (h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"validation {m}\">",
        m = esc(metric)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">validation {}</text>",
        w / 2.0,
        esc(metric)
    );
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        w - left - right,
        h - top - bottom
    );
    for k in 0..=4 {
        let y = y_min + (y_max - y_min) * k as f64 / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{}</text>",
            left - 4.0,
            py(y) + 3.0,
            tick(y, y_max - y_min)
        );
    }
    let step = (x_max / 10.0).ceil().max(1.0) as usize;
    for e in (1..=x_max as usize).step_by(step) {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{e}</text>",
            px(e as f64),
            h - bottom + 14.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">epoch</text>",
        left + (w - left - right) / 2.0,
        h - 6.0
    );
    for (i, pts) in &series {
        if pts.is_empty() {
            continue;
        }
        let points: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let col = colour(group_of[*i]);
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{col}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            esc(&runs[*i].label)
        );
        for (x, y) in pts {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{col}\"/>",
                px(*x),
                py(*y)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn tick(v: f64, range: f64) -> String {
    if range >= 10.0 {
        format!("{v:.0}")
    } else if range >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Test captions of a run directory by image id (empty when unreadable).
fn captions_of(dir: &Path) -> BTreeMap<String, String> {
    super::read_captions(dir).unwrap_or_default()
}

/// The image file of test image `id` of a run, if the dataset is where its spec says.
fn find_image(r: &RunData, id: &str) -> Option<PathBuf> {
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
    dirs.into_iter().map(|d| d.join(id)).find(|p| p.is_file())
}

/// A JPEG thumbnail of an image file as a data URI.
fn thumbnail(path: &Path) -> Option<String> {
    let img = image::open(path).ok()?.thumbnail(160, 160).to_rgb8();
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).ok()?;
    Some(format!("data:image/jpeg;base64,{}", base64(buf.get_ref())))
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
    // Prefer the report's sample images (the ones its report.md shows), then id order.
    let common = common.unwrap_or_default();
    let base = &c.runs[c.groups[c.baseline].runs[0]];
    let mut ids: Vec<&String> = base
        .report
        .samples
        .iter()
        .filter_map(|s| common.get(&s.image).copied())
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
        if let Some(uri) = find_image(base, id).and_then(|p| thumbnail(&p)) {
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
    use super::*;

    #[test]
    fn base64_of_known_strings() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
