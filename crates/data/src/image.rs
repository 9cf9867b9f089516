//! Image pipeline: decode, resize to the encoder's square input, ImageNet-normalise, CHW `f32`.

use std::path::Path;

use ::image::imageops::FilterType;
use ::image::{ImageDecoder, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// ImageNet channel means (RGB, on a 0–1 scale).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB, on a 0–1 scale).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Default pixel budget of one decoded image ([`ImageConfig::max_pixels`]): 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Preprocessing parameters: square side length, per-channel normalisation and the pixel budget
/// of a decode.
///
/// `max_pixels` does not change the values of an image that decodes, so it is neither
/// serialised (feature-cache keys stay as they were) nor compared by `==`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Output side length in pixels (images become `size × size`).
    pub size: u32,
    /// Per-channel mean subtracted after scaling to 0–1.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by after mean subtraction.
    pub std: [f32; 3],
    /// How the image becomes `size × size`: squashed by a bilinear resize (the default), or
    /// CLIP's bicubic resize of the shorter side and centre crop. Serialised only when not the
    /// default, so the keys of existing feature caches stay as they were.
    #[serde(skip_serializing_if = "Resize::is_squash")]
    pub resize: Resize,
    /// Largest image, in pixels (width × height read from the file's header), that is decoded;
    /// larger ones are refused before any pixel memory is allocated ([`check_pixels`]).
    #[serde(skip)]
    pub max_pixels: u64,
}

impl PartialEq for ImageConfig {
    fn eq(&self, other: &Self) -> bool {
        self.size == other.size
            && self.mean == other.mean
            && self.std == other.std
            && self.resize == other.resize
    }
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            size: 224,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            resize: Resize::Squash,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Side lengths [`ImageConfig::validate`] accepts, in pixels: below 16 the encoders' strided
/// stems leave no spatial extent, above 1024 one image alone takes 12 MiB as `f32` and the
/// encoders' activations several GiB per batch.
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 16..=1024;

impl ImageConfig {
    /// Checks the values: `size` in [`SIZE_RANGE`], every `std` finite and > 0, every `mean`
    /// finite, `max_pixels` ≥ 1. Errors name the field (`size`, `std`, `mean`, `max_pixels`) and
    /// the allowed values.
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |key: &str, message: String| DataError::Invalid {
            key: key.to_string(),
            message,
        };
        if !SIZE_RANGE.contains(&self.size) {
            return Err(invalid(
                "size",
                format!(
                    "must be in {}..={} pixels, got {}",
                    SIZE_RANGE.start(),
                    SIZE_RANGE.end(),
                    self.size
                ),
            ));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(invalid(
                "std",
                format!("must be finite numbers > 0, got {:?}", self.std),
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return Err(invalid(
                "mean",
                format!("must be finite numbers, got {:?}", self.mean),
            ));
        }
        if self.max_pixels == 0 {
            return Err(invalid(
                "max_pixels",
                "must be an integer ≥ 1 (pixels), got 0".to_string(),
            ));
        }
        Ok(())
    }

    /// ImageNet normalisation at side length `size`.
    pub fn imagenet(size: u32) -> Self {
        ImageConfig {
            size,
            ..Self::default()
        }
    }

    /// CLIP's preprocessing at side length `size`, as open_clip's: bicubic resize of the
    /// shorter side, centre crop, CLIP's mean and std ([`crate::resample`]).
    pub fn clip(size: u32) -> Self {
        ImageConfig {
            size,
            mean: crate::resample::CLIP_MEAN,
            std: crate::resample::CLIP_STD,
            resize: Resize::BicubicCenterCrop,
            ..Self::default()
        }
    }

    /// Number of `f32` values produced per image (`3 * size * size`).
    pub fn numel(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }
}

/// Bytes at the end of a JPEG searched for its end-of-image marker (trailing padding allowed).
const JPEG_TAIL: u64 = 4096;

/// Checks that a JPEG file is complete; other formats pass (their decoders report truncation).
/// An empty file is an error whatever its name.
///
/// The JPEG decoder fills the missing part of a truncated file with grey and reports no error,
/// so a cut-off file would be trained on silently. This walks the marker segments from the
/// start-of-image marker to the first start-of-scan (skipping APPn segments, so an embedded
/// EXIF thumbnail does not count) and requires an end-of-image marker (`FF D9`) after it, in
/// the last 4 KiB of the file. Reads only the headers and the tail.
pub fn check_complete(path: &Path) -> Result<(), DataError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e| DataError::io(path, e);
    let truncated = |what: &str| DataError::Image {
        path: path.to_path_buf(),
        message: format!("truncated JPEG: {what}"),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Err(DataError::Image {
            path: path.to_path_buf(),
            message: "empty file (0 bytes)".into(),
        });
    }
    let mut soi = [0u8; 2];
    if file.read_exact(&mut soi).is_err() || soi != [0xFF, 0xD8] {
        return Ok(()); // not a JPEG
    }
    let mut pos = 2u64;
    let scan_start = loop {
        let mut marker = [0u8; 4];
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        if file.read_exact(&mut marker).is_err() {
            return Err(truncated(&format!(
                "file ends at byte {len} inside its headers"
            )));
        }
        if marker[0] != 0xFF {
            return Err(truncated(&format!("no marker at byte {pos}")));
        }
        if marker[1] == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        let segment = u64::from(u16::from_be_bytes([marker[2], marker[3]]));
        pos += 2 + segment;
        if marker[1] == 0xDA {
            break pos;
        }
    };
    if scan_start > len {
        return Err(truncated(&format!(
            "file ends at byte {len} inside its headers"
        )));
    }
    let tail_start = scan_start.max(len.saturating_sub(JPEG_TAIL));
    file.seek(SeekFrom::Start(tail_start)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err(truncated(&format!(
            "no end-of-image marker after the image data ({len} bytes)"
        )));
    }
    Ok(())
}

/// Reads the width and height of an image file from its header (format sniffed from content)
/// and refuses an image of more than `max_pixels` pixels with [`DataError::TooLarge`], naming
/// the file and its size. Nothing but the header is read, nothing of the size of the image is
/// allocated. Returns `(width, height)`.
pub fn check_pixels(path: &Path, max_pixels: u64) -> Result<(u32, u32), DataError> {
    let (width, height) = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .into_dimensions()
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            max_pixels,
        });
    }
    Ok((width, height))
}

/// The files of `paths` over the pixel budget, checked in parallel from their headers
/// ([`check_pixels`]), as `(index in paths, error)` in `paths` order. Files whose header cannot
/// be read are not listed: their decode reports them.
pub fn oversized<P: AsRef<Path> + Sync>(paths: &[P], max_pixels: u64) -> Vec<(usize, DataError)> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .enumerate()
        .filter_map(|(i, p)| match check_pixels(p.as_ref(), max_pixels) {
            Err(e @ DataError::TooLarge { .. }) => Some((i, e)),
            _ => None,
        })
        .collect()
}

/// The image crate's decoder limits for a budget of `max_pixels`: no side longer than the
/// budget, no single allocation above 8 bytes a pixel (RGBA, 16 bits a channel) plus 64 MiB.
pub fn decode_limits(max_pixels: u64) -> Limits {
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    limits
}

/// Decodes an image file (JPEG or PNG; format sniffed from content) into RGB8, turned upright by
/// its EXIF orientation; errors name the file. Images over [`DEFAULT_MAX_PIXELS`] are refused
/// (see [`decode_rgb_within`]).
///
/// A truncated JPEG is an error (see [`check_complete`]), not a partly grey image.
pub fn decode_rgb(path: &Path) -> Result<RgbImage, DataError> {
    decode_rgb_within(path, DEFAULT_MAX_PIXELS)
}

/// [`decode_rgb`] with a pixel budget: an image of more than `max_pixels` pixels (by its header)
/// is refused with [`DataError::TooLarge`] before it is decoded, and the decoder runs under the
/// image crate's [`Limits`] for that budget ([`decode_limits`]).
pub fn decode_rgb_within(path: &Path, max_pixels: u64) -> Result<RgbImage, DataError> {
    check_complete(path)?;
    check_pixels(path, max_pixels)?;
    let mut reader = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    reader.limits(decode_limits(max_pixels));
    let image_err = |e: ::image::ImageError| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut decoder = reader.into_decoder().map_err(image_err)?;
    // Phone photos store their rotation as EXIF orientation: apply it, as viewers do.
    let orientation = decoder
        .orientation()
        .unwrap_or(::image::metadata::Orientation::NoTransforms);
    let mut img = ::image::DynamicImage::from_decoder(decoder).map_err(image_err)?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// Resizes to `size × size` with bilinear filtering (aspect ratio not kept); no-op at the target size.
pub fn resize_square(img: RgbImage, size: u32) -> RgbImage {
    if img.width() == size && img.height() == size {
        img
    } else {
        ::image::imageops::resize(&img, size, size, FilterType::Triangle)
    }
}

/// Converts an RGB image to normalised CHW `f32` values: `(v / 255 - mean[c]) / std[c]`.
pub fn to_chw(img: &RgbImage, cfg: &ImageConfig) -> Vec<f32> {
    let plane = img.width() as usize * img.height() as usize;
    let mut out = vec![0.0f32; 3 * plane];
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * cfg.std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| cfg.mean[c] / cfg.std[c]);
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px.0[c] as f32 * scale[c] - shift[c];
        }
    }
    out
}

/// How an image becomes the encoder's `size × size` input ([`ImageConfig::resize`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Both sides to `size` by a bilinear, antialiased resize (aspect ratio not kept), as
    /// torchvision's `Resize((size, size))` ([`resize_square`]).
    #[default]
    Squash,
    /// The shorter side to `size` by Pillow's bicubic resize, then a centre crop, as CLIP's
    /// preprocessing ([`crate::resample::bicubic_center_crop`]).
    BicubicCenterCrop,
}

impl Resize {
    fn is_squash(&self) -> bool {
        *self == Resize::Squash
    }
}

/// A decoded image as the normalised CHW values of `cfg` (its resize, then its normalisation).
pub fn pixels(img: RgbImage, cfg: &ImageConfig) -> Vec<f32> {
    match cfg.resize {
        Resize::Squash => to_chw(&resize_square(img, cfg.size), cfg),
        Resize::BicubicCenterCrop => crate::resample::bicubic_center_crop(&img, cfg),
    }
}

/// Loads `path` as a normalised CHW tensor of length `3 * size * size`; errors name the file.
pub fn load_image(path: &Path, cfg: &ImageConfig) -> Result<Vec<f32>, DataError> {
    if cfg.size == 0 {
        return Err(DataError::Config("image size must be positive".into()));
    }
    if cfg.std.iter().any(|s| *s <= 0.0 || !s.is_finite()) {
        return Err(DataError::Config(format!(
            "image std must be positive, got {:?}",
            cfg.std
        )));
    }
    Ok(pixels(decode_rgb_within(path, cfg.max_pixels)?, cfg))
}

/// Loads several images in parallel into one contiguous `N × 3 × size × size` buffer (NCHW).
///
/// The first failing file (in `paths` order) is reported.
pub fn load_images<P: AsRef<Path> + Sync>(
    paths: &[P],
    cfg: &ImageConfig,
) -> Result<Vec<f32>, DataError> {
    use rayon::prelude::*;
    let per = cfg.numel();
    let mut out = vec![0.0f32; per * paths.len()];
    if per == 0 {
        return load_image(Path::new(""), cfg).map(|_| out);
    }
    let results: Vec<Result<(), DataError>> = out
        .par_chunks_mut(per)
        .zip(paths.par_iter())
        .map(|(chunk, path)| {
            chunk.copy_from_slice(&load_image(path.as_ref(), cfg)?);
            Ok(())
        })
        .collect();
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn validate_names_the_field_and_the_allowed_sizes() {
        ImageConfig::imagenet(16).validate().unwrap();
        ImageConfig::imagenet(1024).validate().unwrap();
        for size in [0, 15, 1025, 100_000] {
            let err = ImageConfig::imagenet(size).validate().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("key size must be in 16..=1024 pixels, got {size}")
            );
        }
        let mut cfg = ImageConfig::imagenet(64);
        cfg.std[1] = 0.0;
        assert!(matches!(cfg.validate(), Err(DataError::Invalid { key, .. }) if key == "std"));
    }

    #[test]
    fn truncated_jpeg_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.jpg");
        let img = RgbImage::from_fn(256, 192, |x, y| {
            ::image::Rgb([
                ((x * 7 + y * 13) ^ (x * y)) as u8,
                (y * 3) as u8,
                (x ^ y) as u8,
            ])
        });
        img.save(&full).unwrap();
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        // The image crate alone decodes the first third without complaint.
        assert!(::image::open(&cut).is_ok());
        check_complete(&full).unwrap();
        decode_rgb(&full).unwrap();
        for err in [
            check_complete(&cut).unwrap_err(),
            load_image(&cut, &ImageConfig::imagenet(32)).unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(
                msg.contains("cut.jpg") && msg.contains("truncated JPEG"),
                "{msg}"
            );
        }
        // Cut inside the headers, too.
        std::fs::write(&cut, &bytes[..10]).unwrap();
        let msg = check_complete(&cut).unwrap_err().to_string();
        assert!(
            msg.contains("cut.jpg") && msg.contains("inside its headers"),
            "{msg}"
        );
    }

    use super::*;
    use ::image::Rgb;

    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 37 % 256) as u8,
                (y * 91 % 256) as u8,
                ((x + y) * 13 % 256) as u8,
            ])
        })
    }

    #[test]
    fn no_resample_at_target_size_exact_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img.png");
        let img = pattern(8, 8);
        img.save(&p).unwrap();
        let cfg = ImageConfig::imagenet(8);
        let out = load_image(&p, &cfg).unwrap();
        assert_eq!(out.len(), 3 * 64);
        for y in 0..8u32 {
            for x in 0..8u32 {
                let px = img.get_pixel(x, y).0;
                for c in 0..3 {
                    let expected = (px[c] as f32 / 255.0 - cfg.mean[c]) / cfg.std[c];
                    let got = out[c * 64 + (y * 8 + x) as usize];
                    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
                }
            }
        }
    }

    #[test]
    fn resizes_to_square_and_sniffs_format() {
        let dir = tempfile::tempdir().unwrap();
        // PNG bytes under a .jpg name: the format is sniffed from content.
        let p = dir.path().join("wide.jpg");
        pattern(40, 20)
            .save_with_format(&p, ::image::ImageFormat::Png)
            .unwrap();
        let out = load_image(&p, &ImageConfig::imagenet(16)).unwrap();
        assert_eq!(out.len(), 3 * 16 * 16);
        // A uniform image stays uniform after bilinear resize.
        let q = dir.path().join("flat.png");
        RgbImage::from_pixel(30, 50, Rgb([255, 0, 128]))
            .save(&q)
            .unwrap();
        let cfg = ImageConfig::imagenet(7);
        let out = load_image(&q, &cfg).unwrap();
        let r = (1.0 - cfg.mean[0]) / cfg.std[0];
        assert!(out[..49].iter().all(|v| (v - r).abs() < 1e-5));
    }

    #[test]
    fn batch_matches_single_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.png");
        let b = dir.path().join("b.png");
        pattern(8, 8).save(&a).unwrap();
        pattern(12, 9).save(&b).unwrap();
        let cfg = ImageConfig::imagenet(8);
        let batch = load_images(&[&a, &b], &cfg).unwrap();
        let mut expected = load_image(&a, &cfg).unwrap();
        expected.extend(load_image(&b, &cfg).unwrap());
        assert_eq!(batch, expected);
        let err = load_images(&[a, dir.path().join("gone.png")], &cfg).unwrap_err();
        assert!(err.to_string().contains("gone.png"));
    }

    #[test]
    fn errors_name_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.jpg");
        std::fs::write(&p, b"not an image at all").unwrap();
        let err = load_image(&p, &ImageConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.jpg"), "{err}");
        let err = load_image(&dir.path().join("nope.png"), &ImageConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.png"), "{err}");
    }

    #[test]
    fn images_over_the_pixel_budget_are_refused_from_their_header() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.png");
        RgbImage::from_pixel(101, 100, Rgb([10, 20, 30]))
            .save(&big)
            .unwrap();
        let mut cfg = ImageConfig::imagenet(16);
        cfg.max_pixels = 10_000;
        let msg = load_image(&big, &cfg).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "{}: 101 × 100 = 10100 pixels, over the limit of 10000 pixels \
                 (preprocess.max_image_pixels / --max-image-pixels)",
                big.display()
            )
        );
        assert!(matches!(
            check_pixels(&big, 10_000),
            Err(DataError::TooLarge {
                width: 101,
                height: 100,
                ..
            })
        ));
        // At the limit it decodes.
        cfg.max_pixels = 10_100;
        assert_eq!(load_image(&big, &cfg).unwrap().len(), 3 * 16 * 16);
        assert_eq!(check_pixels(&big, 10_100).unwrap(), (101, 100));
        // Megapixels for a megapixel-sized limit; the default budget lets it through.
        let err = DataError::TooLarge {
            path: "photo.png".into(),
            width: 40_000,
            height: 40_000,
            max_pixels: DEFAULT_MAX_PIXELS,
        };
        assert_eq!(
            err.to_string(),
            "photo.png: 40000 × 40000 = 1600.0 megapixels, over the limit of 100.0 \
             (preprocess.max_image_pixels / --max-image-pixels)"
        );
        decode_rgb(&big).unwrap();
        // The parallel header check lists only the files over the budget.
        let small = dir.path().join("small.png");
        pattern(8, 8).save(&small).unwrap();
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"not a png").unwrap();
        let found = oversized(&[&small, &big, &broken], 10_000);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 1);
        assert!(found[0].1.to_string().contains("big.png"));
    }

    /// A PNG that declares `width × height` pixels: its header, one IDAT chunk with the start of
    /// a zlib stream, and IEND (a few dozen bytes; the header is all a size check reads).
    fn png_header_only(path: &Path, width: u32, height: u32) {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let mut chunk = |kind: &[u8; 4], data: &[u8]| {
            out.extend((data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend(kind);
            out.extend(data);
            let crc = crc32(&out[start..]);
            out.extend(crc.to_be_bytes());
        };
        let mut ihdr = Vec::new();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive filter, no interlace
        chunk(b"IHDR", &ihdr);
        chunk(b"IDAT", &[0x78, 0x9C]);
        chunk(b"IEND", &[]);
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn a_huge_png_of_small_file_size_is_refused_without_decoding() {
        // 40 000 × 40 000: 4.8 GB as RGB8, a few dozen bytes on disk.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        png_header_only(&path, 40_000, 40_000);
        assert_eq!(
            ImageReader::open(&path)
                .unwrap()
                .with_guessed_format()
                .unwrap()
                .into_dimensions()
                .unwrap(),
            (40_000, 40_000)
        );
        let msg = load_image(&path, &ImageConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("huge.png: 40000 × 40000 = 1600.0 megapixels, over the limit of 100.0"),
            "{msg}"
        );
    }

    #[test]
    fn max_pixels_is_validated_and_neither_serialised_nor_compared() {
        let mut cfg = ImageConfig::imagenet(32);
        cfg.max_pixels = 0;
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "key max_pixels must be an integer ≥ 1 (pixels), got 0"
        );
        cfg.max_pixels = 5;
        assert_eq!(cfg, ImageConfig::imagenet(32));
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(!json.contains("max_pixels"), "{json}");
        let back: ImageConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.max_pixels, DEFAULT_MAX_PIXELS);
    }
}
