//! `caplab features`: encode a folder of images into one safetensors feature file, with the
//! encode loop of the feature cache ([`crate::feature_cache::encode_images`]).
//!
//! The file has the layout of the feature cache ([`caplab_data::features`]): tensor `pooled`
//! `[N, D]`, with `--spatial` also `spatial` `[N, C, H, W]`, rows in file-name order, and the image
//! names (file names) as a JSON array under the `caplab.names` key of the safetensors metadata.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use caplab_data::image::ImageConfig;
use caplab_models::encoder::{Arch, EncoderConfig};

use crate::backend::{resolve_flags, with_backend};
use crate::feature_cache::{encode_images, feature_key};
use crate::spec::{DeviceChoice, Precision};

/// What `caplab features` encodes, how and where.
#[derive(Clone, Debug)]
pub struct FeaturesRequest {
    /// Encoder architecture, by torchvision name (resnet50, vgg16, inception_v3, ...).
    pub encoder: Arch,
    /// torchvision weights (.pth/.pt or .safetensors); random initialisation when omitted.
    pub weights: Option<PathBuf>,
    /// Directory of images (*.jpg, *.jpeg, *.png), encoded in file-name order.
    pub images: PathBuf,
    /// Output file (.safetensors).
    pub out: PathBuf,
    /// Also store the spatial grid before the final pooling.
    pub spatial: bool,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Square input side in pixels (default: the architecture's, e.g. 224; 299 for inception_v3).
    pub size: Option<u32>,
    /// inception_v3 only: skip torchvision's `transform_input` (for weights trained without it).
    pub no_transform_input: bool,
    /// Where to encode: cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:cpu or auto (as `experiment.device`).
    pub device: DeviceChoice,
    /// Float type of the encoder on CUDA: f32, bf16 or f16 (as `experiment.precision`); the
    /// file always stores f32.
    pub precision: Precision,
    /// Pixel budget of one image (`--max-image-pixels`); larger images are refused before
    /// decoding. `None`: [`caplab_data::image::DEFAULT_MAX_PIXELS`].
    pub max_image_pixels: Option<u64>,
}

/// The image files of `dir` (`.jpg`/`.jpeg`/`.png`, any case) as (file name, path), sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut images = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"));
        if !is_image || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            bail!("{}: file name is not valid UTF-8", path.display());
        };
        images.push((name.to_string(), path));
    }
    images.sort();
    Ok(images)
}

/// Runs `caplab features`: encodes every image of `--images` and writes `--out`.
pub fn run(args: &FeaturesRequest, quiet: bool) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let images = list_images(&args.images)?;
    if images.is_empty() {
        bail!("no .jpg/.jpeg/.png images in {}", args.images.display());
    }
    let arch = args.encoder;
    if args.weights.is_none() {
        tracing::warn!(
            "no --weights: {arch} is randomly initialised, its features are only useful for testing"
        );
    }
    let size = args.size.unwrap_or_else(|| arch.input_size());
    if let Err(message) = arch.check_image_size(size) {
        bail!("--size {message}");
    }
    if args.no_transform_input && arch != Arch::InceptionV3 {
        bail!("--no-transform-input applies to inception_v3 only, not {arch}");
    }
    // The same resolution and dispatch as `caplab run`; errors name the flags.
    let resolved = resolve_flags(args.device, args.precision)?;
    crate::backend::check_parameters_fit(
        resolved,
        &EncoderConfig::new(arch).init::<crate::backend::Cpu>(&Default::default()),
        &format!("--encoder {arch}"),
    )?;
    tracing::info!(device = %resolved.describe(), "caplab features");
    with_backend!(resolved, B, device => run_on::<B>(args, &images, quiet, device))
}

fn run_on<B: Backend>(
    args: &FeaturesRequest,
    images: &[(String, PathBuf)],
    quiet: bool,
    device: &B::Device,
) -> Result<()> {
    let arch = args.encoder;
    let config = EncoderConfig::new(arch)
        .with_weights(args.weights.clone())
        .with_transform_input(!args.no_transform_input);
    let encoder = config
        .load::<B>(device)
        .with_context(|| format!("cannot build the {arch} encoder"))?;
    let cfg = ImageConfig {
        max_pixels: args
            .max_image_pixels
            .unwrap_or(caplab_data::image::DEFAULT_MAX_PIXELS),
        // A CLIP tower takes CLIP's preprocessing, the others ImageNet's.
        ..if arch.is_clip() {
            ImageConfig::clip(args.size.unwrap_or_else(|| arch.input_size()))
        } else {
            ImageConfig::imagenet(args.size.unwrap_or_else(|| arch.input_size()))
        }
    };
    let key = feature_key(&config, &cfg, images, args.spatial)?;
    tracing::info!(
        encoder = %arch,
        images = images.len(),
        size = cfg.size,
        spatial = args.spatial,
        out = %args.out.display(),
        "encoding images"
    );
    let bar = crate::progress::bar(images.len() as u64, "features", quiet);
    let start = std::time::Instant::now();
    encode_images(
        &encoder,
        images,
        &key,
        args.batch_size,
        &args.out,
        device,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    // Decoding, preprocessing, the forward passes and writing: what scripts/gpu/check.sh times.
    tracing::info!(
        "encoded {} images in {seconds:.2} s: {:.1} images/s",
        images.len(),
        images.len() as f64 / seconds.max(1e-9)
    );
    println!("{}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use caplab_data::features::FeatureStore;

    #[test]
    fn encodes_a_folder_in_file_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cfg = caplab_data::synth::SynthConfig {
            images: 3,
            size: 32,
            ..Default::default()
        };
        caplab_data::synth::generate(&cfg, &data).unwrap();
        let images_dir = data.join("images");
        // Not images: skipped. A PNG-named copy sorts first.
        std::fs::write(images_dir.join("notes.txt"), "x").unwrap();
        std::fs::copy(images_dir.join("000002.jpg"), images_dir.join("0.PNG")).unwrap();
        let listed = list_images(&images_dir).unwrap();
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0.PNG", "000000.jpg", "000001.jpg", "000002.jpg"]);

        let args = FeaturesRequest {
            encoder: Arch::ResnetTiny,
            weights: None,
            images: images_dir.clone(),
            out: dir.path().join("out/feat.safetensors"),
            spatial: true,
            batch_size: 3,
            size: Some(32),
            no_transform_input: false,
            device: DeviceChoice::Cpu,
            precision: Precision::F32,
            max_image_pixels: None,
        };
        run(&args, true).unwrap();
        let key = feature_key(
            &EncoderConfig::new(Arch::ResnetTiny),
            &ImageConfig::imagenet(32),
            &listed,
            true,
        )
        .unwrap();
        let store = FeatureStore::open(&args.out, &key).unwrap();
        assert_eq!(store.names(), names);
        assert_eq!(store.dim(), Arch::ResnetTiny.feature_dim());
        assert_eq!(store.spatial_shape().map(|s| s[0]), Some(128));
        // The copy and its original encode identically; different images do not.
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(store.pooled(0), store.pooled(3)));
        assert!(!close(store.pooled(1), store.pooled(2)));

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = run(
            &FeaturesRequest {
                images: empty,
                ..args
            },
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
