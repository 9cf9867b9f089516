//! CLIP's preprocessing against open_clip's eval transform (Pillow bicubic resize of the shorter
//! side, centre crop, ToTensor, Normalize with CLIP's mean/std) on lossless PNG fixtures from
//! `scripts/parity/clip_preprocess.py`.

use std::path::{Path, PathBuf};

use caplab_data::image::{decode_rgb, load_image, ImageConfig, Resize};
use caplab_data::resample::{center_crop, resize_bicubic, shorter_side_size};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clip")
        .join(name)
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("fixture");
    let json: Value = serde_json::from_str(&text).expect("fixture JSON");
    json["cases"].as_array().expect("cases").clone()
}

/// Pixels after resize and crop are Pillow's byte for byte, and the normalised tensor is
/// open_clip's float for float (bit-identical `f32`).
#[test]
fn clip_preprocessing_matches_open_clip_byte_for_byte() {
    let cases = cases();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let file = case["file"].as_str().expect("file");
        let size = case["size"].as_u64().expect("size") as u32;
        let path = fixture(file);

        let img = decode_rgb(&path).expect("decode");
        let (w, h) = shorter_side_size(img.width(), img.height(), size);
        let cropped = center_crop(&resize_bicubic(&img, w, h), size);
        let want: Vec<u8> = case["pixels"]
            .as_array()
            .expect("pixels")
            .iter()
            .map(|v| v.as_u64().expect("u8") as u8)
            .collect();
        assert_eq!(cropped.as_raw(), &want, "{file} at {size}: pixels");

        let cfg = ImageConfig::clip(size);
        assert_eq!(cfg.resize, Resize::BicubicCenterCrop);
        let got = load_image(&path, &cfg).expect("load");
        let want: Vec<f32> = case["tensor"]
            .as_array()
            .expect("tensor")
            .iter()
            .map(|v| v.as_f64().expect("float") as f32)
            .collect();
        assert_eq!(got.len(), want.len(), "{file} at {size}: length");
        let mismatches = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            mismatches, 0,
            "{file} at {size}: values differ from open_clip's"
        );
    }
}

/// The resize mode is part of the configuration's identity (and so of feature-cache keys), but
/// the default is not written, so keys of ImageNet caches stay as they were.
#[test]
fn resize_mode_is_compared_and_serialised_only_when_not_the_default() {
    let imagenet = ImageConfig::imagenet(224);
    let json = serde_json::to_string(&imagenet).expect("json");
    assert!(!json.contains("resize"), "{json}");
    let clip = ImageConfig::clip(224);
    assert_ne!(imagenet, clip);
    let json = serde_json::to_string(&clip).expect("json");
    assert!(json.contains(r#""resize":"bicubic_center_crop""#), "{json}");
    let back: ImageConfig = serde_json::from_str(&json).expect("read back");
    assert_eq!(back, clip);
    // Only the resize differs from the same mean/std squashed.
    let squashed = ImageConfig {
        resize: Resize::Squash,
        ..clip.clone()
    };
    assert_ne!(squashed, clip);
}
