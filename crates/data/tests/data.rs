//! End-to-end check of the public API: generate → load → vocabulary → image tensors.

use std::path::Path;

use caplab_data::config::{DatasetConfig, DatasetKind};
use caplab_data::dataset::Split;
use caplab_data::flickr8k::read_captions_csv;
use caplab_data::image::{load_image, ImageConfig};
use caplab_data::load::load_dataset;
use caplab_data::synth::{generate, SynthConfig};
use caplab_data::vocab::{Vocab, VocabConfig};

#[test]
fn synth_to_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shapes");
    let cfg = SynthConfig {
        images: 30,
        size: 96,
        ..SynthConfig::default()
    };
    let summary = generate(&cfg, &out).unwrap();
    assert_eq!((summary.images, summary.captions), (30, 150));
    assert_eq!((summary.train, summary.val, summary.test), (24, 3, 3));

    // captions.txt is a proper Kaggle-format CSV.
    let rows = read_captions_csv(&out.join("captions.txt")).unwrap();
    assert_eq!(rows.len(), 150);
    assert_eq!(rows[0].0, "000000.jpg");

    // The same directory read as plain flickr8k + Karpathy split file gives the same splits.
    let ds = load_dataset(&DatasetConfig::synth(&out)).unwrap();
    let as_flickr: DatasetConfig = serde_json::from_value(serde_json::json!({
        "kind": "flickr8k", "root": out, "splits": "splits.json"
    }))
    .unwrap();
    let ds2 = load_dataset(&as_flickr).unwrap();
    let splits =
        |d: &caplab_data::CaptionDataset| d.images.iter().map(|r| r.split).collect::<Vec<_>>();
    assert_eq!(splits(&ds), splits(&ds2));
    let as_karpathy = DatasetConfig {
        kind: DatasetKind::Karpathy,
        splits: Some("splits.json".into()),
        ..DatasetConfig::synth(&out)
    };
    let ds3 = load_dataset(&as_karpathy).unwrap();
    assert_eq!(ds3.images[5].captions, ds.images[5].captions);

    let vocab = Vocab::from_train(&ds, &VocabConfig::default());
    assert!(vocab.len() > 20);
    let train = ds.split(Split::Train);
    let ids = vocab.encode(&train[0].captions[0]);
    assert!(!ids.contains(&Vocab::UNK));
    let vocab_path = tmp.path().join("vocab.json");
    vocab.save(&vocab_path).unwrap();
    assert_eq!(Vocab::load(&vocab_path).unwrap(), vocab);

    let at_96 = load_image(&train[0].path, &ImageConfig::imagenet(96)).unwrap();
    assert_eq!(at_96.len(), 3 * 96 * 96);
    let at_64 = load_image(&train[0].path, &ImageConfig::imagenet(64)).unwrap();
    assert_eq!(at_64.len(), 3 * 64 * 64);
    assert!(at_64.iter().all(|v| v.is_finite() && v.abs() < 3.0));
}

#[test]
fn missing_root_and_missing_image() {
    let err = load_dataset(&DatasetConfig::synth("/no/such/caplab/root"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("caplab data synth --out"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("images")).unwrap();
    std::fs::write(
        tmp.path().join("captions.txt"),
        "image,caption\nghost.jpg,a dog\n",
    )
    .unwrap();
    let cfg = DatasetConfig {
        kind: DatasetKind::Flickr8k,
        ..DatasetConfig::synth(tmp.path())
    };
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("captions.txt: line 2") && err.contains("ghost.jpg"),
        "{err}"
    );
    assert!(!Path::new("/no/such/caplab/root").exists());
}

/// caplab's pixels against torchvision's PIL pipeline (`Resize((S, S), bilinear, antialias)`,
/// `ToTensor`, `Normalize`) on the same JPEG; fixture by `scripts/parity/preprocess.py
/// --write-fixture`. The README states this tolerance: mean |diff| ≤ 0.007 and, when downscaling by
/// 2× or more, max |diff| ≤ two u8 levels (2/255/std ≈ 0.035 in normalised units; measured 0.0349
/// at 64 px and 0.0350 at 96 px here, at the edges of the fixture's red rectangle).
#[test]
fn preprocessing_matches_torchvision_within_the_stated_tolerance() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess");
    for size in [64u32, 96] {
        let bytes = std::fs::read(dir.join(format!("photo.{size}.f32"))).unwrap();
        let expected: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let got = load_image(&dir.join("photo.jpg"), &ImageConfig::imagenet(size)).unwrap();
        assert_eq!(got.len(), expected.len());
        let diffs: Vec<f32> = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().cloned().fold(0.0f32, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let one_level = 1.0 / 255.0 / 0.224 + 1e-4; // the smallest std is 0.224 (green)
        assert!(mean <= 0.007, "size {size}: mean |diff| {mean}");
        assert!(max <= 2.0 * one_level, "size {size}: max |diff| {max}");
    }
}

#[test]
fn truncated_jpeg_fails_dataset_load_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shapes");
    let cfg = SynthConfig {
        images: 6,
        size: 96,
        ..SynthConfig::default()
    };
    generate(&cfg, &out).unwrap();
    let victim = out.join("images/000003.jpg");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 3]).unwrap();
    let err = load_dataset(&DatasetConfig::synth(&out))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("000003.jpg") && err.contains("truncated JPEG"),
        "{err}"
    );
}

/// A JPEG with an EXIF APP1 segment whose IFD0 holds only `Orientation = orientation`.
fn jpeg_with_orientation(img: &image::RgbImage, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut plain),
            image::ImageFormat::Jpeg,
        )
        .expect("encode");
    // Little-endian TIFF: header, one IFD entry (tag 0x0112, SHORT, count 1), no next IFD.
    let mut tiff = vec![
        b'I', b'I', 0x2A, 0x00, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
    ];
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn exif_orientation_turns_a_phone_photo_upright() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 32×16: red left half, blue right half.
    let img = image::RgbImage::from_fn(32, 16, |x, _| {
        if x < 16 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let path = tmp.path().join("phone.jpg");
    // Orientation 6: the stored image must be turned 90° clockwise to display.
    std::fs::write(&path, jpeg_with_orientation(&img, 6)).expect("write");
    let upright = caplab_data::image::decode_rgb(&path).expect("decode");
    assert_eq!(upright.dimensions(), (16, 32), "rotated by 90°");
    // Turned clockwise, the left (red) half becomes the top.
    let top = upright.get_pixel(8, 4);
    let bottom = upright.get_pixel(8, 28);
    assert!(top[0] > 200 && top[2] < 60, "top is red: {top:?}");
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom is blue: {bottom:?}"
    );
    // Without the tag the same pixels stay as stored.
    std::fs::write(&path, jpeg_with_orientation(&img, 1)).expect("write");
    assert_eq!(
        caplab_data::image::decode_rgb(&path)
            .expect("decode")
            .dimensions(),
        (32, 16)
    );
}

/// `preprocess.jpeg_draft` on the committed JPEGs of `scripts/jpeg_fixtures.py`: a progressive JPEG
/// decodes reduced to exactly the pixels of its baseline twin (same DCT coefficients), close to
/// its own full decode; a CMYK JPEG, which the reduced decoder does not convert, takes the full
/// decode byte for byte.
#[test]
fn progressive_and_cmyk_jpegs_decode_under_jpeg_draft() {
    use caplab_data::image::{decode_rgb_draft, decode_rgb_within, DEFAULT_MAX_PIXELS};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg");
    let draft = |size| ImageConfig {
        jpeg_draft: true,
        ..ImageConfig::imagenet(size)
    };
    // 384 × 288 for 32 px: 1/4 (96 × 72; 1/8 would leave 36 rows, under 2 × 32).
    let progressive = dir.join("draft-progressive.jpg");
    let reduced = decode_rgb_draft(&progressive, DEFAULT_MAX_PIXELS, 32).unwrap();
    assert_eq!(reduced.dimensions(), (96, 72));
    let baseline =
        decode_rgb_draft(&dir.join("draft-baseline.jpg"), DEFAULT_MAX_PIXELS, 32).unwrap();
    assert!(reduced.as_raw() == baseline.as_raw());
    let full = load_image(&progressive, &ImageConfig::imagenet(32)).unwrap();
    let got = load_image(&progressive, &draft(32)).unwrap();
    let mean = full
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / full.len() as f32;
    assert!(mean < 1.5 / 255.0 / 0.224, "mean |diff| {mean}");
    assert_ne!(full, got);
    // 256 × 192 for 32 px would be 1/2, but CMYK takes the full decode.
    let cmyk = dir.join("draft-cmyk.jpg");
    let drafted = decode_rgb_draft(&cmyk, DEFAULT_MAX_PIXELS, 32).unwrap();
    let full = decode_rgb_within(&cmyk, DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(drafted.dimensions(), (256, 192));
    assert!(drafted.as_raw() == full.as_raw());
    assert_eq!(
        load_image(&cmyk, &draft(32)).unwrap(),
        load_image(&cmyk, &ImageConfig::imagenet(32)).unwrap()
    );
}

#[test]
fn exif_orientation_turns_a_reduced_decode_upright() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 512 × 256: red left half, blue right half; for 32 px it decodes at 1/4 (128 × 64).
    let img = image::RgbImage::from_fn(512, 256, |x, _| {
        if x < 256 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let path = tmp.path().join("phone.jpg");
    std::fs::write(&path, jpeg_with_orientation(&img, 6)).expect("write");
    let upright = caplab_data::image::decode_rgb_draft(&path, 1 << 20, 32).expect("decode");
    assert_eq!(
        upright.dimensions(),
        (64, 128),
        "reduced 4× and rotated by 90°"
    );
    let top = upright.get_pixel(32, 16);
    let bottom = upright.get_pixel(32, 112);
    assert!(top[0] > 200 && top[2] < 60, "top is red: {top:?}");
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom is blue: {bottom:?}"
    );
}
