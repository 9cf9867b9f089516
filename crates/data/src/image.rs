//! Image pipeline: decode, resize to the encoder's square input, ImageNet-normalise, CHW `f32`.

use std::path::Path;

use ::image::imageops::FilterType;
use ::image::metadata::Orientation;
use ::image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// ImageNet channel means (RGB, on a 0–1 scale).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB, on a 0–1 scale).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Default pixel budget of one decoded image ([`ImageConfig::max_pixels`]): 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Preprocessing parameters: square side length, per-channel normalisation, reduced-scale JPEG
/// decoding and the pixel budget of a decode.
///
/// `max_pixels` does not change the values of an image that decodes, so it is neither
/// serialised (feature-cache keys stay as they were) nor compared by `==`. `jpeg_draft` does
/// change them: it is compared, and serialised only when on, so the keys of caches built
/// without it stay as they were.
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
    /// Decode a large JPEG at 1/2, 1/4 or 1/8 of its size (DCT scaling, as PIL's `draft`) when
    /// the result still has both sides ≥ [`DRAFT_GAP`] × `size` ([`draft_factor`]); off: every
    /// image is decoded at full size, as PIL and torchvision do.
    #[serde(skip_serializing_if = "is_false")]
    pub jpeg_draft: bool,
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
            && self.jpeg_draft == other.jpeg_draft
            && self.resize == other.resize
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            size: 224,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            resize: Resize::Squash,
            jpeg_draft: false,
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
    header_within(path, max_pixels).map(|(_, width, height)| (width, height))
}

/// [`check_pixels`], also returning the format sniffed from the file's content.
fn header_within(
    path: &Path,
    max_pixels: u64,
) -> Result<(Option<ImageFormat>, u32, u32), DataError> {
    let reader = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    let format = reader.format();
    let (width, height) = reader.into_dimensions().map_err(|e| DataError::Image {
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
    Ok((format, width, height))
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
    decode_checked(path, max_pixels)
}

/// The full-size decode of [`decode_rgb_within`], after its checks.
fn decode_checked(path: &Path, max_pixels: u64) -> Result<RgbImage, DataError> {
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

/// How much larger than the output a reduced decode stays on both sides ([`draft_factor`]).
///
/// A DCT-scaled decode averages 8×8, 4×4 or 2×2 blocks; resized on by less than 2× that adds
/// visible blur: on the committed 384 × 288 fixture at 32 px, mean / max 3.2 / 49 u8 levels from
/// the full decode when the reduced image is only ≥ 32 px, 0.8 / 23 when it is ≥ 64 px. Pillow's
/// `thumbnail` keeps the same gap (`reducing_gap = 2`) before its `draft`.
pub const DRAFT_GAP: u32 = 2;

/// The factor (8, 4, 2 or 1) by which a `width × height` JPEG is decoded smaller for an output of
/// `size × size` under [`ImageConfig::jpeg_draft`]: the largest whose decode, `⌈width / f⌉ ×
/// ⌈height / f⌉`, is still at least [`DRAFT_GAP`] × `size` on both sides ([`resize_square`]
/// scales each side to `size` on its own, so both must stay above it). 1 (a full decode) when no
/// reduction keeps both sides.
pub fn draft_factor(width: u32, height: u32, size: u32) -> u32 {
    let min_side = size.saturating_mul(DRAFT_GAP);
    [8, 4, 2]
        .into_iter()
        .find(|&f| width.div_ceil(f) >= min_side && height.div_ceil(f) >= min_side)
        .unwrap_or(1)
}

/// Decodes an image for an output of `size × size`, like [`decode_rgb_within`] (same checks,
/// same budget on the header's dimensions), but a JPEG whose [`draft_factor`] is above 1 is
/// decoded at that reduced scale by the `jpeg-decoder` crate's DCT scaling, turned upright by its
/// EXIF orientation. Everything else (other formats, JPEGs too small to reduce, CMYK and 16-bit
/// JPEGs) takes [`decode_rgb_within`]'s full decode, byte for byte.
pub fn decode_rgb_draft(path: &Path, max_pixels: u64, size: u32) -> Result<RgbImage, DataError> {
    check_complete(path)?;
    let (format, width, height) = header_within(path, max_pixels)?;
    let factor = draft_factor(width, height, size);
    if format == Some(ImageFormat::Jpeg) && factor > 1 {
        let (w, h) = (width.div_ceil(factor), height.div_ceil(factor));
        if let Some(img) = decode_jpeg_scaled(path, max_pixels, (w, h))? {
            return Ok(img);
        }
    }
    decode_checked(path, max_pixels)
}

/// Decodes a JPEG at the DCT-scaled size `(width, height)`; `None` when its pixel format (CMYK,
/// 16-bit grey) or the decoder's choice of scale does not allow it.
fn decode_jpeg_scaled(
    path: &Path,
    max_pixels: u64,
    (width, height): (u32, u32),
) -> Result<Option<RgbImage>, DataError> {
    use jpeg_decoder::PixelFormat;
    let jpeg_err = |e: jpeg_decoder::Error| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut decoder = jpeg_decoder::Decoder::new(std::io::BufReader::new(file));
    let max_alloc = decode_limits(max_pixels).max_alloc.unwrap_or(u64::MAX);
    decoder.set_max_decoding_buffer_size(usize::try_from(max_alloc).unwrap_or(usize::MAX));
    decoder.read_info().map_err(jpeg_err)?;
    let format = decoder.info().map(|info| info.pixel_format);
    if !matches!(format, Some(PixelFormat::RGB24 | PixelFormat::L8)) {
        return Ok(None);
    }
    // `scale` picks the smallest factor that reaches the request on at least one side; asking
    // for exactly the reduced size gets that size, which the check below confirms.
    let (Ok(w16), Ok(h16)) = (u16::try_from(width), u16::try_from(height)) else {
        return Ok(None);
    };
    if decoder.scale(w16, h16).map_err(jpeg_err)? != (w16, h16) {
        return Ok(None);
    }
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().map_err(jpeg_err)?;
    let short = || DataError::Image {
        path: path.to_path_buf(),
        message: format!("the JPEG decoder returned too few pixels for {width} × {height}"),
    };
    let mut img = if format == Some(PixelFormat::L8) {
        DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, pixels).ok_or_else(short)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(short)?)
    };
    img.apply_orientation(orientation);
    Ok(Some(img.to_rgb8()))
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
        Resize::BicubicCenterCrop => {
            crate::resample::bicubic_center_crop(&img, cfg.size, cfg.mean, cfg.std)
        }
    }
}

/// Loads `path` as a normalised CHW tensor of length `3 * size * size`; errors name the file.
/// With [`ImageConfig::jpeg_draft`], a large JPEG is decoded at reduced scale first
/// ([`decode_rgb_draft`]).
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
    let decoded = if cfg.jpeg_draft {
        decode_rgb_draft(path, cfg.max_pixels, cfg.size)?
    } else {
        decode_rgb_within(path, cfg.max_pixels)?
    };
    Ok(pixels(decoded, cfg))
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

    /// A photo-like `width × height` image: gradients, a disc, a bar and mild deterministic noise.
    fn photo(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_f491_u32;
        RgbImage::from_fn(width, height, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state % 9) as f32 - 4.0;
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let base = if (fx - 0.6).powi(2) + (fy - 0.45).powi(2) < 0.02 {
                [230.0, 40.0, 40.0]
            } else if (0.12..0.43).contains(&fx) && (0.65..0.78).contains(&fy) {
                [20.0, 20.0, 200.0]
            } else {
                [
                    255.0 * fx,
                    255.0 * fy,
                    128.0 + 100.0 * (fx * 9.0).sin() * (fy * 7.0).cos(),
                ]
            };
            Rgb(base.map(|v| (v + noise).clamp(0.0, 255.0) as u8))
        })
    }

    fn write_jpeg(img: &DynamicImage, path: &Path) {
        let file = std::fs::File::create(path).unwrap();
        let encoder = ::image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90);
        img.write_with_encoder(encoder).unwrap();
    }

    /// Mean and max absolute difference of two equally long value lists.
    fn diff(a: &[f32], b: &[f32]) -> (f32, f32) {
        assert_eq!(a.len(), b.len());
        let d: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
        (
            d.iter().sum::<f32>() / d.len() as f32,
            d.iter().cloned().fold(0.0, f32::max),
        )
    }

    fn draft(size: u32) -> ImageConfig {
        ImageConfig {
            jpeg_draft: true,
            ..ImageConfig::imagenet(size)
        }
    }

    #[test]
    fn draft_factor_keeps_both_sides_at_least_twice_the_output_size() {
        // Both sides stay ≥ 2 × size (DRAFT_GAP).
        let cases = [
            ((6000, 4000, 224), 8), // 750 × 500
            ((4000, 6000, 224), 8),
            ((4032, 3024, 224), 4), // 12 MP phone photo: 1008 × 756; 1/8 would leave 378 rows
            ((6000, 4000, 600), 2), // 3000 × 2000; 1/4 would leave 1000 rows
            ((640, 480, 224), 1),   // COCO: 1/2 would leave 240 rows
            ((640, 480, 64), 2),    // ... at 64 px: 320 × 240
            ((500, 375, 224), 1),   // Flickr8k
            ((896, 896, 224), 2),
            ((895, 895, 224), 2), // ⌈895 / 2⌉ = 448
            ((894, 894, 224), 1),
            ((8000, 400, 224), 1), // a panorama: the short side decides
            ((200, 100, 224), 1),  // smaller than the output: enlarged, never reduced
        ];
        for ((w, h, size), factor) in cases {
            assert_eq!(draft_factor(w, h, size), factor, "{w} × {h} for {size}");
        }
        // On a grid: both sides stay ≥ 2 × size, and twice the factor would not.
        for w in (1..4000).step_by(37) {
            for h in (1..4000).step_by(41) {
                for size in [16, 64, 224, 299] {
                    let f = draft_factor(w, h, size);
                    assert!([1, 2, 4, 8].contains(&f));
                    if f > 1 {
                        assert!(w.div_ceil(f) >= 2 * size && h.div_ceil(f) >= 2 * size);
                    }
                    if f < 8 {
                        let g = 2 * f;
                        assert!(w.div_ceil(g) < 2 * size || h.div_ceil(g) < 2 * size);
                    }
                }
            }
        }
    }

    #[test]
    fn a_large_jpeg_decodes_at_reduced_scale_close_to_the_full_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jpg");
        write_jpeg(&DynamicImage::ImageRgb8(photo(1600, 1200)), &path);
        for (size, dims) in [
            (64, (200, 150)),
            (75, (200, 150)),
            (76, (400, 300)),
            (151, (800, 600)),
        ] {
            let img = decode_rgb_draft(&path, DEFAULT_MAX_PIXELS, size).unwrap();
            assert_eq!(img.dimensions(), dims, "size {size}");
        }
        // The preprocessed pixels are close to those of the full decode.
        let size = 64;
        let full = load_image(&path, &ImageConfig::imagenet(size)).unwrap();
        let reduced = load_image(&path, &draft(size)).unwrap();
        let (mean, max) = diff(&full, &reduced);
        let level = 1.0 / 255.0 / 0.224; // one u8 level in normalised units (green's std)
        assert!(mean < 1.5 * level, "mean |diff| {mean}");
        assert!(max < 16.0 * level, "max |diff| {max}");
        assert_ne!(full, reduced, "the reduced decode took the full path");
    }

    #[test]
    fn without_a_reduction_the_draft_decode_is_the_full_decode_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        // A JPEG too small to reduce for 224 (1/2 would leave 240 rows, under 2 × 224) ...
        let jpeg = dir.path().join("coco.jpg");
        write_jpeg(&DynamicImage::ImageRgb8(photo(640, 480)), &jpeg);
        // ... and a PNG large enough, which only JPEGs are.
        let png = dir.path().join("large.png");
        photo(800, 600).save(&png).unwrap();
        for (path, size) in [(&jpeg, 224), (&jpeg, 1024), (&png, 64)] {
            let drafted = decode_rgb_draft(path, DEFAULT_MAX_PIXELS, size).unwrap();
            let full = decode_rgb_within(path, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(drafted.dimensions(), full.dimensions());
            assert!(drafted.as_raw() == full.as_raw(), "{}", path.display());
            let cfg = ImageConfig::imagenet(size);
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(
                bits(load_image(path, &draft(size)).unwrap()),
                bits(load_image(path, &cfg).unwrap())
            );
        }
    }

    #[test]
    fn a_grey_jpeg_decodes_reduced_to_equal_channels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grey.jpg");
        let grey = DynamicImage::ImageRgb8(photo(800, 600)).to_luma8();
        write_jpeg(&DynamicImage::ImageLuma8(grey), &path);
        let img = decode_rgb_draft(&path, DEFAULT_MAX_PIXELS, 64).unwrap();
        assert_eq!(img.dimensions(), (200, 150));
        assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        let full = resize_square(decode_rgb_within(&path, DEFAULT_MAX_PIXELS).unwrap(), 64);
        let reduced = resize_square(img, 64);
        let mean = full
            .as_raw()
            .iter()
            .zip(reduced.as_raw())
            .map(|(a, b)| f32::from(a.abs_diff(*b)))
            .sum::<f32>()
            / full.as_raw().len() as f32;
        assert!(mean < 1.5, "mean |diff| {mean} levels");
    }

    #[test]
    fn the_pixel_budget_counts_the_full_size_of_a_reduced_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jpg");
        write_jpeg(&DynamicImage::ImageRgb8(photo(1600, 1200)), &path);
        // 1600 × 1200 = 1.92 MP over a 1 MP budget, though the decode would be 200 × 150.
        let mut cfg = draft(64);
        cfg.max_pixels = 1_000_000;
        let err = load_image(&path, &cfg).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TooLarge {
                    width: 1600,
                    height: 1200,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("big.jpg"), "{err}");
        cfg.max_pixels = 1_920_000;
        assert_eq!(load_image(&path, &cfg).unwrap().len(), 3 * 64 * 64);
    }

    #[test]
    fn jpeg_draft_is_compared_and_serialised_only_when_on() {
        // Off, the JSON (the feature-cache key's part) is what it was before the key existed.
        let off = ImageConfig::imagenet(224);
        assert_eq!(
            serde_json::to_string(&off).unwrap(),
            r#"{"size":224,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}"#
        );
        let on = ImageConfig {
            jpeg_draft: true,
            ..off.clone()
        };
        assert_ne!(on, off);
        let json = serde_json::to_string(&on).unwrap();
        assert!(json.ends_with(r#","jpeg_draft":true}"#), "{json}");
        assert_eq!(serde_json::from_str::<ImageConfig>(&json).unwrap(), on);
        let old = r#"{"size":224,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}"#;
        assert!(!serde_json::from_str::<ImageConfig>(old).unwrap().jpeg_draft);
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
