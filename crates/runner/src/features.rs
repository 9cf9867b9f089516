//! `caplab features`: encode a folder of images into one safetensors feature file.
//!
//! The encode loop of the feature cache lives here too ([`encode_images`], [`cached`]): it runs
//! the encoder over the images and feeds the rows to the store of [`caplab_data::features`].
//!
//! The file has the layout of the feature cache ([`caplab_data::features`]): tensor `pooled`
//! `[N, D]`, with `--spatial` also `spatial` `[N, C, H, W]`, rows in file-name order, and the image
//! names (file names) as a JSON array under the `caplab.names` key of the safetensors metadata.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use caplab_data::features::{open_cached, FeatureError, FeatureKey, FeatureStore, FeatureWriter};
use caplab_data::image::{load_images, ImageConfig};
use caplab_models::encoder::{Arch, Backbone, Encoder, EncoderConfig};

use crate::backend::{resolve_flags, with_backend};
use crate::spec::{DeviceChoice, Precision};

/// Arguments of `caplab features`.
#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// Encoder architecture, by torchvision name (resnet50, vgg16, inception_v3, ...).
    #[arg(long)]
    pub encoder: Arch,
    /// torchvision weights (.pth/.pt or .safetensors); random initialisation when omitted.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Directory of images (*.jpg, *.jpeg, *.png), encoded in file-name order.
    #[arg(long)]
    pub images: PathBuf,
    /// Output file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Also store the spatial grid before the final pooling.
    #[arg(long)]
    pub spatial: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Square input side in pixels (default: the architecture's, e.g. 224; 299 for inception_v3).
    #[arg(long)]
    pub size: Option<u32>,
    /// inception_v3 only: skip torchvision's `transform_input` (for weights trained without it).
    #[arg(long)]
    pub no_transform_input: bool,
    /// Where to encode: cpu, cuda, cuda:N or auto (as `experiment.device`).
    #[arg(long, default_value = "auto", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
    /// Float type of the encoder on CUDA: f32, bf16 or f16 (as `experiment.precision`); the
    /// file always stores f32.
    #[arg(long, default_value = "f32", value_parser = Precision::parse)]
    pub precision: Precision,
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
pub fn run(args: &FeaturesArgs, quiet: bool) -> Result<()> {
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
    if args.no_transform_input && arch != Arch::InceptionV3 {
        bail!("--no-transform-input applies to inception_v3 only, not {arch}");
    }
    // The same resolution and dispatch as `caplab run`; errors name the flags.
    let resolved = resolve_flags(args.device, args.precision)?;
    tracing::info!(device = %resolved.describe(), "caplab features");
    with_backend!(resolved, B, device => run_on::<B>(args, &images, quiet, device))
}

fn run_on<B: Backend>(
    args: &FeaturesArgs,
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
    let cfg = ImageConfig::imagenet(args.size.unwrap_or_else(|| arch.input_size()));
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
        &cfg,
        args.batch_size,
        args.spatial,
        &key,
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

/// The cache key of `encoder`'s features of `images` preprocessed with `image`.
pub fn feature_key(
    encoder: &EncoderConfig,
    image: &ImageConfig,
    images: &[(String, PathBuf)],
    spatial: bool,
) -> Result<FeatureKey, FeatureError> {
    FeatureKey::new(
        encoder.arch.name(),
        encoder.weights.as_deref(),
        (encoder.arch == Arch::InceptionV3).then_some(encoder.transform_input),
        image,
        images,
        spatial,
    )
}

/// Encodes `images` (id, path) with `encoder` in batches on backend B (inference only) into the
/// cache entry `out`; progress via a callback `on_batch(done, total)`.
///
/// `cfg` and `spatial` must equal `key.image` and `key.spatial`, and the encoder's feature size
/// must match `key.arch`. Rows are written through a [`FeatureWriter`], so an interrupted call
/// resumes from the last completed batch; `done` counts rows written so far, including resumed ones.
#[allow(clippy::too_many_arguments)]
pub fn encode_images<B: Backend>(
    encoder: &Encoder<B>,
    images: &[(String, PathBuf)],
    cfg: &ImageConfig,
    batch_size: usize,
    spatial: bool,
    key: &FeatureKey,
    out: &Path,
    device: &B::Device,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<(), FeatureError> {
    let invalid = |message: String| FeatureError::Invalid {
        path: out.to_path_buf(),
        message,
    };
    if images.is_empty() {
        return Err(invalid("no images to encode".into()));
    }
    if *cfg != key.image || spatial != key.spatial {
        return Err(invalid(
            "image configuration or spatial flag differs from the cache key".into(),
        ));
    }
    let size = cfg.size as usize;
    let batch_size = batch_size.max(1);

    // One zero image fixes the output sizes before anything is written.
    let probe = Tensor::<B, 4>::zeros([1, 3, size, size], device);
    let (pooled, grid) = encoder.forward_both(probe);
    let dim = pooled.dims()[1];
    let key_dim = Arch::ALL
        .iter()
        .find(|a| a.name() == key.arch)
        .map(|a| a.feature_dim());
    if key_dim != Some(dim) {
        return Err(invalid(format!(
            "encoder yields {dim}-dimensional features, but the key's architecture {} has {}",
            key.arch,
            key_dim.map_or("an unknown size".to_string(), |d| d.to_string())
        )));
    }
    let [_, c, h, w] = grid.dims();
    let names: Vec<String> = images.iter().map(|(id, _)| id.clone()).collect();
    let mut writer = FeatureWriter::create(out, key, names, dim, spatial.then_some([c, h, w]))?;
    let total = images.len();
    let mut row = writer.rows_done();
    on_batch(row, total);
    while row < total {
        let end = (row + batch_size).min(total);
        let n = end - row;
        let paths: Vec<&Path> = images[row..end].iter().map(|(_, p)| p.as_path()).collect();
        let pixels = load_images(&paths, cfg)?;
        let input = Tensor::<B, 4>::from_data(TensorData::new(pixels, [n, 3, size, size]), device);
        let (pooled, grid) = if spatial {
            let (p, g) = encoder.forward_both(input);
            (p, Some(g))
        } else {
            (encoder.forward_pooled(input), None)
        };
        let pooled: Vec<f32> = pooled.into_data().iter::<f32>().collect();
        let grid: Option<Vec<f32>> = grid.map(|g| g.into_data().iter::<f32>().collect());
        writer.write_rows(&pooled, grid.as_deref())?;
        row = end;
        on_batch(row, total);
    }
    writer.finish()
}

/// Opens the cache entry for `key` under `cache_dir`, building it (and logging that) when it is
/// missing, stale or corrupt; returns the store and whether it was built now.
pub fn cached<B: Backend>(
    cache_dir: &Path,
    key: &FeatureKey,
    encoder: &Encoder<B>,
    images: &[(String, PathBuf)],
    batch_size: usize,
    device: &B::Device,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<(FeatureStore, bool), FeatureError> {
    let (path, store) = open_cached(cache_dir, key)?;
    if let Some(store) = store {
        return Ok((store, false));
    }
    encode_images(
        encoder,
        images,
        &key.image,
        batch_size,
        key.spatial,
        key,
        &path,
        device,
        on_batch,
    )?;
    Ok((FeatureStore::open(&path, key)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

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

        let args = FeaturesArgs {
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
            &FeaturesArgs {
                images: empty,
                ..args
            },
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}

/// The feature cache's encode loop (moved here with it from caplab-models).
#[cfg(test)]
mod cache_tests {
    use super::*;
    use burn::backend::Flex;
    use caplab_data::synth::{generate, SynthConfig};
    use std::fs;

    /// `path` with `suffix` appended to its file name.
    fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
        let mut name = path.file_name().unwrap().to_os_string();
        name.push(suffix);
        path.with_file_name(name)
    }

    type B = Flex;

    /// A fresh scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("caplab-features-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// `n` synthetic JPEGs (32 px) under `dir/data/images`, as (id, path) in file-name order.
    fn images(dir: &Path, n: usize) -> Vec<(String, PathBuf)> {
        let cfg = SynthConfig {
            images: n,
            size: 32,
            ..SynthConfig::default()
        };
        generate(&cfg, &dir.join("data")).unwrap();
        let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir.join("data/images"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_string_lossy().into_owned(), p)
            })
            .collect();
        out.sort();
        out
    }

    /// [`encode_images`] of `imgs` with `key`'s preprocessing and spatial flag, in batches of 2.
    fn encode(
        encoder: &Encoder<B>,
        imgs: &[(String, PathBuf)],
        key: &FeatureKey,
        out: &Path,
        on_batch: &mut dyn FnMut(usize, usize),
    ) -> Result<(), FeatureError> {
        let device = Default::default();
        encode_images(
            encoder,
            imgs,
            &key.image,
            2,
            key.spatial,
            key,
            out,
            &device,
            on_batch,
        )
    }

    fn setup(
        spatial: bool,
    ) -> (
        Encoder<B>,
        ImageConfig,
        FeatureKey,
        Vec<(String, PathBuf)>,
        Scratch,
    ) {
        let scratch = Scratch::new(if spatial { "s" } else { "p" });
        let imgs = images(&scratch.0, 5);
        let cfg = ImageConfig::imagenet(32);
        let key = feature_key(&EncoderConfig::new(Arch::ResnetTiny), &cfg, &imgs, spatial).unwrap();
        let encoder = EncoderConfig::new(Arch::ResnetTiny).init::<B>(&Default::default());
        (encoder, cfg, key, imgs, scratch)
    }

    #[test]
    fn encodes_rows_matching_a_direct_forward() {
        let (encoder, cfg, key, imgs, scratch) = setup(true);
        let out = scratch.0.join("feat.safetensors");
        let mut calls = Vec::new();
        let device = Default::default();
        encode(&encoder, &imgs, &key, &out, &mut |d, t| calls.push((d, t))).unwrap();
        assert_eq!(calls, vec![(0, 5), (2, 5), (4, 5), (5, 5)]);
        assert!(!with_suffix(&out, ".partial").exists());
        assert!(!with_suffix(&out, ".partial.json").exists());
        let store = FeatureStore::open(&out, &key).unwrap();
        assert_eq!(store.len(), 5);
        assert_eq!(store.dim(), 128);
        assert!(store.zero_copy());
        let names: Vec<&str> = imgs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(store.names(), names);
        let [c, h, w] = store.spatial_shape().unwrap();
        assert_eq!(c, 128);
        // Row 3 equals encoding that image alone (inference-mode batch norm: batch-independent).
        let pixels = load_images(&[&imgs[3].1], &cfg).unwrap();
        let x = Tensor::<B, 4>::from_data(TensorData::new(pixels, [1, 3, 32, 32]), &device);
        let (p, g) = encoder.forward_both(x);
        let p: Vec<f32> = p.into_data().iter::<f32>().collect();
        let g: Vec<f32> = g.into_data().iter::<f32>().collect();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(store.pooled(3), &p));
        assert_eq!(store.spatial(3).unwrap().len(), c * h * w);
        assert!(close(store.spatial(3).unwrap(), &g));
        assert!(!close(store.pooled(2), store.pooled(3)));
    }

    #[test]
    fn cache_reuses_and_rejects_stale_or_corrupt_files() {
        let (encoder, _cfg, key, imgs, scratch) = setup(false);
        let dir = scratch.0.join("cache");
        let device = Default::default();
        let (store, built) =
            cached(&dir, &key, &encoder, &imgs, 4, &device, &mut |_, _| {}).unwrap();
        assert!(built);
        assert!(store.spatial(0).is_none());
        let first = store.pooled(4).to_vec();
        drop(store);
        let (store, built) =
            cached(&dir, &key, &encoder, &imgs, 4, &device, &mut |_, _| {}).unwrap();
        assert!(!built);
        assert_eq!(store.pooled(4), first.as_slice());
        let path = store.path().to_path_buf();
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), key.file_name());
        drop(store);

        // Another key (spatial, other size) is a different file and a stale one for this path.
        let other = FeatureKey {
            spatial: true,
            ..key.clone()
        };
        assert_ne!(other.file_name(), key.file_name());
        let err = FeatureStore::open(&path, &other).unwrap_err();
        assert!(matches!(err, FeatureError::Stale { .. }), "{err}");
        assert!(err.to_string().contains(&key.file_name()), "{err}");

        // Flip one byte of the data: detected by the checksum, then rebuilt by `cached`.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let err = FeatureStore::open(&path, &key).unwrap_err();
        assert!(matches!(err, FeatureError::Corrupt { .. }), "{err}");
        let (store, built) =
            cached(&dir, &key, &encoder, &imgs, 4, &device, &mut |_, _| {}).unwrap();
        assert!(built);
        assert_eq!(store.pooled(4), first.as_slice());

        // Garbage under the final name is a format error.
        fs::write(&path, b"not safetensors").unwrap();
        let err = FeatureStore::open(&path, &key).unwrap_err();
        assert!(matches!(err, FeatureError::Format { .. }), "{err}");
    }

    #[test]
    fn interrupted_encoding_resumes_from_the_sidecar() {
        let (encoder, _cfg, key, imgs, scratch) = setup(false);
        let reference = scratch.0.join("ref.safetensors");
        encode(&encoder, &imgs, &key, &reference, &mut |_, _| {}).unwrap();

        // Interrupt after the first batch: the callback panics, as a crash would stop the loop.
        let out = scratch.0.join("feat.safetensors");
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            encode(&encoder, &imgs, &key, &out, &mut |d, _| {
                assert!(d < 2, "simulated crash");
            })
        }));
        assert!(crashed.is_err());
        assert!(!out.exists(), "a crash must not leave the final file");
        assert!(with_suffix(&out, ".partial").exists());

        let mut calls = Vec::new();
        encode(&encoder, &imgs, &key, &out, &mut |d, t| calls.push((d, t))).unwrap();
        assert_eq!(
            calls.first(),
            Some(&(2, 5)),
            "resumed after the completed batch"
        );
        assert!(!with_suffix(&out, ".partial.json").exists());
        let a = FeatureStore::open(&out, &key).unwrap();
        let b = FeatureStore::open(&reference, &key).unwrap();
        for i in 0..5 {
            assert_eq!(a.pooled(i), b.pooled(i));
        }

        // A partial for another key is discarded and encoding restarts at row 0.
        let partial = with_suffix(&out, ".partial");
        fs::write(&partial, b"junk").unwrap();
        fs::write(with_suffix(&out, ".partial.json"), b"{}").unwrap();
        let mut first = None;
        encode(&encoder, &imgs, &key, &out, &mut |d, _| {
            first.get_or_insert(d);
        })
        .unwrap();
        assert_eq!(first, Some(0));
        assert_eq!(
            FeatureStore::open(&out, &key).unwrap().pooled(1),
            b.pooled(1)
        );
    }

    #[test]
    fn key_tracks_images_weights_and_rejects_bad_arguments() {
        let (encoder, cfg, key, imgs, scratch) = setup(false);
        // Touching the image list (reorder, drop one) changes the hash; the same list does not.
        let same = feature_key(&EncoderConfig::new(Arch::ResnetTiny), &cfg, &imgs, false).unwrap();
        assert_eq!(same, key);
        let mut reordered = imgs.clone();
        reordered.swap(0, 1);
        assert_ne!(
            caplab_data::features::images_sha256(&reordered).unwrap(),
            key.images_sha256
        );
        assert_ne!(
            caplab_data::features::images_sha256(&imgs[1..]).unwrap(),
            key.images_sha256
        );
        let weights = scratch.0.join("w.bin");
        fs::write(&weights, b"weights").unwrap();
        let with_w = feature_key(
            &EncoderConfig::new(Arch::ResnetTiny).with_weights(Some(weights.clone())),
            &cfg,
            &imgs,
            false,
        )
        .unwrap();
        // `printf weights | sha256sum`
        assert_eq!(
            with_w.weights_sha256.as_deref(),
            Some("9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c")
        );
        assert_ne!(with_w.file_name(), key.file_name());
        assert!(key.file_name().starts_with("resnet_tiny-"));
        // Inception's transform_input is part of the key; other architectures do not carry it.
        assert_eq!(key.transform_input, None);
        let inception = |transform| {
            let config = EncoderConfig::new(Arch::InceptionV3).with_transform_input(transform);
            feature_key(&config, &cfg, &imgs, false).unwrap()
        };
        assert_eq!(inception(true).transform_input, Some(true));
        assert_ne!(inception(true).file_name(), inception(false).file_name());
        let missing = scratch.0.join("gone.jpg");
        let err =
            caplab_data::features::images_sha256(&[("gone.jpg".into(), missing)]).unwrap_err();
        assert!(err.to_string().contains("gone.jpg"), "{err}");

        let device = Default::default();
        let out = scratch.0.join("x.safetensors");
        let mut noop = |_: usize, _: usize| {};
        let err = encode_images(
            &encoder,
            &imgs,
            &ImageConfig::imagenet(48),
            2,
            false,
            &key,
            &out,
            &device,
            &mut noop,
        )
        .unwrap_err();
        assert!(matches!(err, FeatureError::Invalid { .. }), "{err}");
        let wrong_arch = FeatureKey {
            arch: "resnet18".into(),
            ..key.clone()
        };
        let err = encode(&encoder, &imgs, &wrong_arch, &out, &mut noop).unwrap_err();
        assert!(err.to_string().contains("x.safetensors"), "{err}");
        let mut broken = imgs.clone();
        fs::write(&broken[2].1, b"not a jpeg").unwrap();
        broken[2].0 = "broken".into();
        let err = encode(&encoder, &broken, &key, &out, &mut noop).unwrap_err();
        assert!(err.to_string().contains(&imgs[2].0), "{err}");
        assert!(!out.exists());
    }
}
