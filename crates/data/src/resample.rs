//! CLIP's preprocessing, exactly as open_clip / torchvision run it on a PIL image: bicubic resize
//! of the shorter side to `size` (`Resize(size, BICUBIC)`), centre crop to `size × size`
//! (`CenterCrop(size)`), then `ToTensor` and `Normalize` with CLIP's mean and std.
//!
//! The resize is Pillow's `ImagingResample` for 8-bit images, not the `image` crate's filters:
//! the same separable bicubic kernel (a = −0.5, support 2, widened by the scale when
//! downscaling, i.e. antialiased), the same sample centres and window bounds, the same 22-bit
//! fixed-point weights, a horizontal pass first whose rows are rounded to u8, then the vertical
//! pass. On the same RGB pixels the output is byte for byte Pillow's (test
//! `clip_preprocessing_matches_open_clip_byte_for_byte`, fixtures from
//! `scripts/parity/clip_preprocess.py`).

use ::image::RgbImage;

/// CLIP's channel means (RGB, on a 0–1 scale), as open_clip's `OPENAI_DATASET_MEAN`.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's channel standard deviations, as open_clip's `OPENAI_DATASET_STD`.
// open_clip's decimals as written; each rounds to the same f32 that torch makes of it.
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Fractional bits of Pillow's fixed-point weights for 8-bit images (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Pillow's bicubic kernel (`bicubic_filter`, a = −0.5); support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// One output sample's window: first input index and fixed-point weights.
struct Window {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for `in_size → out_size`.
fn windows(in_size: usize, out_size: usize) -> Vec<Window> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    let inverse = 1.0 / filter_scale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero; clamped to 0 right after, as Pillow.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (min..max)
                .map(|x| bicubic((x as f64 - center + 0.5) * inverse))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let fixed = w * f64::from(1u32 << PRECISION_BITS);
                    (if w < 0.0 { fixed - 0.5 } else { fixed + 0.5 }) as i32
                })
                .collect();
            Window {
                start: min,
                weights,
            }
        })
        .collect()
}

/// Pillow's `clip8`: the rounded fixed-point sum as a u8 (the sum starts at one half).
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `width × height` with Pillow's bicubic filter (`Image.resize(size, BICUBIC)`),
/// byte for byte; an axis whose size does not change is not resampled, as in Pillow.
pub fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if (in_w, in_h) == (out_w, out_h) {
        return img.clone();
    }
    let src = img.as_raw();
    let half = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass over the rows the vertical pass reads (all of them when it runs).
    let vertical = windows(in_h, out_h);
    let (first_row, last_row) = if in_h == out_h {
        (0, in_h)
    } else {
        let last = vertical.last().map_or(in_h, |w| w.start + w.weights.len());
        (vertical[0].start, last)
    };
    let (mid, mid_w) = if in_w == out_w {
        (
            src[first_row * in_w * 3..last_row * in_w * 3].to_vec(),
            in_w,
        )
    } else {
        let horizontal = windows(in_w, out_w);
        let mut mid = vec![0u8; (last_row - first_row) * out_w * 3];
        for (y, row) in mid.chunks_exact_mut(out_w * 3).enumerate() {
            let line = &src[(first_row + y) * in_w * 3..(first_row + y + 1) * in_w * 3];
            for (x, window) in horizontal.iter().enumerate() {
                for c in 0..3 {
                    let sum = window.weights.iter().enumerate().fold(half, |s, (k, w)| {
                        s + i64::from(line[(window.start + k) * 3 + c]) * i64::from(*w)
                    });
                    row[x * 3 + c] = clip8(sum);
                }
            }
        }
        (mid, out_w)
    };
    if in_h == out_h {
        return RgbImage::from_raw(width, height, mid).unwrap_or_else(|| RgbImage::new(0, 0));
    }
    let mut out = vec![0u8; out_h * mid_w * 3];
    for (y, window) in vertical.iter().enumerate() {
        let base = window.start - first_row;
        for i in 0..mid_w * 3 {
            let sum = window.weights.iter().enumerate().fold(half, |s, (k, w)| {
                s + i64::from(mid[(base + k) * mid_w * 3 + i]) * i64::from(*w)
            });
            out[y * mid_w * 3 + i] = clip8(sum);
        }
    }
    // The buffer has exactly width × height × 3 bytes.
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// torchvision's `Resize(size)` output size for a `width × height` image: the shorter side
/// becomes `size`, the longer `⌊size · long / short⌋`.
pub fn shorter_side_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let long = (f64::from(size) * f64::from(long) / f64::from(short.max(1))) as u32;
    if width <= height {
        (size, long)
    } else {
        (long, size)
    }
}

/// torchvision's `CenterCrop(size)` of an image at least `size` on both sides: offsets
/// `round((side − size) / 2)`, Python's rounding (halves to even).
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let offset = |side: u32| (f64::from(side.saturating_sub(size)) / 2.0).round_ties_even() as u32;
    let (left, top) = (offset(img.width()), offset(img.height()));
    ::image::imageops::crop_imm(img, left, top, size, size).to_image()
}

/// CLIP's preprocessing of a decoded image: [`shorter_side_size`], [`resize_bicubic`],
/// [`center_crop`], then CHW `f32` as `ToTensor` and `Normalize` compute it,
/// `(v / 255 − mean) / std` in `f32` (an `ImageConfig`'s size, mean and std).
pub fn bicubic_center_crop(img: &RgbImage, size: u32, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let (width, height) = shorter_side_size(img.width(), img.height(), size);
    let cropped = center_crop(&resize_bicubic(img, width, height), size);
    let plane = cropped.width() as usize * cropped.height() as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in cropped.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px.0[c]) / 255.0 - mean[c]) / std[c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_torchvision() {
        assert_eq!(shorter_side_size(500, 375, 224), (298, 224));
        assert_eq!(shorter_side_size(375, 500, 224), (224, 298));
        assert_eq!(shorter_side_size(224, 224, 224), (224, 224));
        // ⌊24 · 53 / 41⌋ = ⌊31.02⌋
        assert_eq!(shorter_side_size(53, 41, 24), (31, 24));
    }

    #[test]
    fn crop_offsets_round_halves_to_even() {
        let img = RgbImage::from_fn(29, 26, |x, y| ::image::Rgb([x as u8, y as u8, 0]));
        // (29 − 24) / 2 = 2.5 → 2; (26 − 24) / 2 = 1.
        let crop = center_crop(&img, 24);
        assert_eq!(crop.get_pixel(0, 0).0, [2, 1, 0]);
        let img = RgbImage::from_fn(31, 24, |x, y| ::image::Rgb([x as u8, y as u8, 0]));
        // 3.5 → 4.
        assert_eq!(center_crop(&img, 24).get_pixel(0, 0).0, [4, 0, 0]);
    }

    #[test]
    fn constant_images_stay_constant_and_weights_sum_to_one() {
        for (n, m) in [(50, 24), (11, 24), (7, 3), (224, 224)] {
            let total: i64 = 1 << PRECISION_BITS;
            for w in windows(n, m) {
                let sum: i64 = w.weights.iter().map(|&k| i64::from(k)).sum();
                assert!(
                    (sum - total).abs() <= w.weights.len() as i64,
                    "{n}->{m}: {sum}"
                );
            }
        }
        let img = RgbImage::from_pixel(37, 23, ::image::Rgb([200, 17, 90]));
        let out = resize_bicubic(&img, 16, 29);
        assert!(out.pixels().all(|p| p.0 == [200, 17, 90]));
    }
}
