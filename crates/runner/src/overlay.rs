//! Attention overlays: each generated word's attention map blended over its test image.

use std::path::Path;

use anyhow::{Context, Result};
use caplab_data::dataset::ImageRecord;
use image::{imageops, Rgb, RgbImage};

use crate::fsutil::write_atomic;

/// Side of each panel in pixels.
const PANEL: u32 = 128;

/// Writes one PNG strip per image (the image, then one panel per word with its attention map
/// in red) under `dir`; returns the paths relative to the run directory, in sample order.
pub fn write_attention_maps(
    dir: &Path,
    records: &[ImageRecord],
    captions: &[String],
    maps: &[Vec<Vec<f32>>],
    grid: usize,
) -> Result<Vec<String>> {
    if maps.is_empty() || grid == 0 {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for (i, words) in maps.iter().enumerate() {
        let (Some(record), Some(caption)) = (records.get(i), captions.get(i)) else {
            break;
        };
        let base = image::open(&record.path)
            .with_context(|| format!("reading {}", record.path.display()))?
            .to_rgb8();
        let base = imageops::resize(&base, PANEL, PANEL, imageops::FilterType::Triangle);
        let panels = words.len() + 1;
        let mut strip = RgbImage::new(PANEL * panels as u32, PANEL);
        imageops::replace(&mut strip, &base, 0, 0);
        for (w, alpha) in words.iter().enumerate() {
            let heat = heat_panel(&base, alpha, grid);
            imageops::replace(&mut strip, &heat, (PANEL * (w as u32 + 1)) as i64, 0);
        }
        let stem = Path::new(&record.id)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{i}"));
        let name = format!("{stem}.png");
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(strip)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .context("encoding an attention overlay")?;
        write_atomic(&dir.join(&name), &png)?;
        let words_txt = format!("{stem}.txt");
        write_atomic(&dir.join(&words_txt), format!("{caption}\n").as_bytes())?;
        let dir_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(format!("{dir_name}/{name}"));
    }
    Ok(out)
}

/// The image darkened where attention is low and tinted red where it is high (weights
/// stretched to the map's own min–max range, so the most and least attended cells stand out).
fn heat_panel(base: &RgbImage, alpha: &[f32], grid: usize) -> RgbImage {
    let max = alpha.iter().cloned().fold(f32::MIN, f32::max);
    let min = alpha.iter().cloned().fold(f32::MAX, f32::min);
    let span = (max - min).max(1e-6);
    let mut out = base.clone();
    for (x, y, px) in out.enumerate_pixels_mut() {
        // Nearest grid cell: location index y·w + x, as grid_to_sequence orders it.
        let gx = (x as usize * grid) / PANEL as usize;
        let gy = (y as usize * grid) / PANEL as usize;
        let a = (alpha.get(gy * grid + gx).copied().unwrap_or(min) - min) / span;
        let Rgb([r, g, b]) = *px;
        let dim = 0.25 + 0.75 * a;
        *px = Rgb([
            ((r as f32 * dim) * (1.0 - 0.5 * a) + 255.0 * 0.5 * a) as u8,
            (g as f32 * dim * (1.0 - 0.5 * a)) as u8,
            (b as f32 * dim * (1.0 - 0.5 * a)) as u8,
        ]);
    }
    out
}
