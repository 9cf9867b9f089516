//! Pieces of caplab's self-contained HTML pages (`report.html`, `compare.html`): escaping,
//! base64 data URIs, thumbnails and hand-drawn SVG line plots. No JavaScript anywhere.

use std::fmt::Write as _;
use std::path::Path;

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

/// The colour of series `group`.
pub fn colour(group: usize) -> &'static str {
    PALETTE[group % PALETTE.len()]
}

/// One line of a plot.
pub struct Series {
    /// Shown as the line's tooltip.
    pub label: String,
    /// Stroke colour.
    pub colour: &'static str,
    /// `(x, y)` points, x ≥ 1 (epochs).
    pub points: Vec<(f64, f64)>,
}

/// An inline SVG line plot (420 × 260) of `series` over x = 1.., titled `title`.
pub fn line_plot(title: &str, x_label: &str, series: &[Series]) -> String {
    let (w, h) = (420.0, 260.0);
    let (left, right, top, bottom) = (56.0, 12.0, 28.0, 36.0);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|q| q.1));
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
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\">",
        t = esc(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        w / 2.0,
        esc(title)
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
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
        left + (w - left - right) / 2.0,
        h - 6.0,
        esc(x_label)
    );
    for line in series {
        if line.points.is_empty() {
            continue;
        }
        let points: Vec<String> = line
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let col = line.colour;
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{col}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            esc(&line.label)
        );
        for (x, y) in &line.points {
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

/// A JPEG thumbnail of an image file as a data URI.
pub fn thumbnail(path: &Path) -> Option<String> {
    let img = image::open(path).ok()?.thumbnail(160, 160).to_rgb8();
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).ok()?;
    Some(format!("data:image/jpeg;base64,{}", base64(buf.get_ref())))
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
