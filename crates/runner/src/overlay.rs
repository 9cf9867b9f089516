//! Attention overlays: each generated word's attention map blended over its test image.

use std::path::Path;

use anyhow::{Context, Result};
use caplab_data::dataset::ImageRecord;
use image::{imageops, Rgb, RgbImage};

use crate::fsutil::write_atomic;

/// Side of each panel in pixels.
const PANEL: u32 = 128;

/// The side of the square grid a map of `locations` weights covers (CNN grids of square
/// inputs: 2×2, 4×4, 7×7, 8×8 …), or `None` when it is not a square.
pub fn grid_side(locations: usize) -> Option<usize> {
    let side = (locations as f64).sqrt().round() as usize;
    (side > 0 && side * side == locations).then_some(side)
}

/// Writes one PNG strip per image (the image, then one panel per word with its attention map
/// in red) under `dir`; returns the paths relative to the run directory, in sample order. The
/// grid of each map is taken from the map itself (its number of locations).
pub fn write_attention_maps(
    dir: &Path,
    records: &[ImageRecord],
    captions: &[String],
    maps: &[Vec<Vec<f32>>],
) -> Result<Vec<String>> {
    let Some(locations) = maps.iter().flatten().map(Vec::len).next() else {
        return Ok(Vec::new());
    };
    let Some(grid) = grid_side(locations) else {
        anyhow::bail!("attention maps of {locations} locations are not a square grid");
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_comes_from_the_number_of_locations() {
        assert_eq!(grid_side(4), Some(2));
        assert_eq!(
            grid_side(16),
            Some(4),
            "128 px through resnet_tiny: 4×4, not 2×2"
        );
        assert_eq!(grid_side(49), Some(7));
        assert_eq!(grid_side(12), None);
    }

    #[test]
    fn every_cell_of_a_4x4_map_shows_in_its_own_part_of_the_panel() {
        let base = RgbImage::from_pixel(PANEL, PANEL, Rgb([200, 200, 200]));
        for cell in 0..16 {
            let mut alpha = vec![0.0f32; 16];
            alpha[cell] = 1.0;
            let heat = heat_panel(&base, &alpha, 4);
            let (gx, gy) = ((cell % 4) as u32, (cell / 4) as u32);
            let quarter = PANEL / 4;
            let hot = heat.get_pixel(gx * quarter + quarter / 2, gy * quarter + quarter / 2);
            let cold_cell = (cell + 5) % 16;
            let (cx, cy) = ((cold_cell % 4) as u32, (cold_cell / 4) as u32);
            let cold = heat.get_pixel(cx * quarter + quarter / 2, cy * quarter + quarter / 2);
            assert!(hot[0] > cold[0], "cell {cell}: {hot:?} vs {cold:?}");
        }
    }
}
