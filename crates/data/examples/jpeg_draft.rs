//! Decode time of one large JPEG with and without `preprocess.jpeg_draft` (docs/benchmarks.md).
//!
//! `cargo run --release -p caplab-data --example jpeg_draft -- generate OUT.jpg [W H]` writes a
//! photo-like JPEG (gradients, shapes, noise; quality 90; default 6000 × 4000).
//! `cargo run --release -p caplab-data --example jpeg_draft -- load IMAGE SIZE full|draft` runs
//! the real preprocessing of one image (`load_image`: decode, resize to SIZE × SIZE, normalise)
//! once and prints its wall time; run it under `/usr/bin/time -v` for the peak memory.

use std::path::Path;
use std::time::Instant;

use caplab_data::image::{draft_factor, load_image, ImageConfig};
use image::{DynamicImage, Rgb, RgbImage};

fn generate(out: &Path, width: u32, height: u32) -> Result<(), Box<dyn std::error::Error>> {
    let mut state = 0x9e37_79b9_u32;
    let img = RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 17) as f32 - 8.0;
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let base = if (fx - 0.6).powi(2) + (fy - 0.45).powi(2) < 0.02 {
            [230.0, 40.0, 40.0]
        } else if (0.12..0.43).contains(&fx) && (0.65..0.78).contains(&fy) {
            [20.0, 20.0, 200.0]
        } else {
            [
                255.0 * fx,
                255.0 * fy,
                128.0 + 100.0 * (fx * 40.0).sin() * (fy * 30.0).cos(),
            ]
        };
        Rgb(base.map(|v| (v + noise).clamp(0.0, 255.0) as u8))
    });
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90);
    DynamicImage::ImageRgb8(img).write_with_encoder(encoder)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", out, rest @ ..] => {
            let (w, h) = match rest {
                [] => (6000, 4000),
                [w, h] => (w.parse()?, h.parse()?),
                _ => return Err("usage: jpeg_draft generate OUT.jpg [W H]".into()),
            };
            generate(Path::new(out), w, h)
        }
        ["load", image, size, mode @ ("full" | "draft")] => {
            let cfg = ImageConfig {
                jpeg_draft: *mode == "draft",
                ..ImageConfig::imagenet(size.parse()?)
            };
            let path = Path::new(image);
            let (w, h) = caplab_data::image::check_pixels(path, cfg.max_pixels)?;
            let start = Instant::now();
            let pixels = load_image(path, &cfg)?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let factor = if cfg.jpeg_draft {
                draft_factor(w, h, cfg.size)
            } else {
                1
            };
            println!(
                "{image}: {w} × {h}, {mode} (1/{factor}), {} values, {ms:.1} ms",
                pixels.len()
            );
            Ok(())
        }
        _ => Err("usage: jpeg_draft generate OUT.jpg [W H] | load IMAGE SIZE full|draft".into()),
    }
}
