//! The feature cache of a frozen encoder: every image of a dataset encoded once into a
//! safetensors file ([`caplab_data::features`]), keyed by the encoder, its weights, the image
//! preprocessing and the image files, and reused by later runs, evaluations and captions
//! instead of decoding pixels. [`encode_images`] is the encode loop `caplab features` also uses.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use caplab_data::features::{open_cached, FeatureError, FeatureKey, FeatureStore, FeatureWriter};
use caplab_data::image::{load_images, ImageConfig};
use caplab_models::encoder::{Arch, Backbone, Encoder, EncoderConfig};

use crate::batch::ImageSource;
use crate::prepare::Prepared;
use crate::report::FeatureCacheInfo;
use crate::spec::Spec;

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
/// The images are preprocessed as `key.image` says, with the spatial grid when `key.spatial`;
/// the encoder's feature size must match `key.arch`. An encoder without the pooled feature
/// ([`Encoder::has_pooled`]) writes a spatial entry's grid only (pooled features of size 0). Rows are written through a [`FeatureWriter`], so an interrupted call
/// resumes from the last completed batch; `done` counts rows written so far, including resumed ones.
pub fn encode_images<B: Backend>(
    encoder: &Encoder<B>,
    images: &[(String, PathBuf)],
    key: &FeatureKey,
    batch_size: usize,
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
    let (cfg, spatial) = (&key.image, key.spatial);
    let size = cfg.size as usize;
    let batch_size = batch_size.max(1);

    // An encoder built without its pooled layers (a VGG without fc6/fc7) writes a grid-only
    // entry: pooled features of size 0.
    let has_pooled = encoder.has_pooled();
    if !has_pooled && !spatial {
        return Err(invalid(
            "the encoder was built without its pooled layers and the key asks for no grid".into(),
        ));
    }
    // One zero image fixes the output sizes before anything is written.
    let probe = Tensor::<B, 4>::zeros([1, 3, size, size], device);
    let (dim, grid) = if has_pooled {
        let (pooled, grid) = encoder.forward_both(probe);
        (pooled.dims()[1], grid)
    } else {
        (0, encoder.forward_spatial(probe))
    };
    let key_dim = Arch::ALL
        .iter()
        .find(|a| a.name() == key.arch)
        .map(|a| a.feature_dim());
    if has_pooled && key_dim != Some(dim) {
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
        let (pooled, grid) = match (spatial, has_pooled) {
            (true, true) => {
                let (p, g) = encoder.forward_both(input);
                (Some(p), Some(g))
            }
            (true, false) => (None, Some(encoder.forward_spatial(input))),
            (false, _) => (Some(encoder.forward_pooled(input)), None),
        };
        let pooled: Vec<f32> =
            pooled.map_or_else(Vec::new, |p| p.into_data().iter::<f32>().collect());
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
    encode_images(encoder, images, key, batch_size, &path, device, on_batch)?;
    Ok((FeatureStore::open(&path, key)?, true))
}

/// With a frozen encoder, encodes every image once into the feature cache (or reuses the
/// cached file) and makes every split read its rows instead of pixels.
pub fn attach_feature_cache<B: Backend>(
    spec: &Spec,
    data: &mut Prepared,
    encoder: &caplab_models::encoder::Encoder<B>,
    device: &B::Device,
    quiet: bool,
) -> Result<Option<FeatureCacheInfo>> {
    if spec.model.encoder.trainable != caplab_models::Trainable::Frozen {
        return Ok(None);
    }
    let spatial = spec.model.decoder.is_attention();
    let images: Vec<(String, PathBuf)> = [&data.train, &data.val, &data.test]
        .iter()
        .flat_map(|s| s.records.iter().map(|r| (r.id.clone(), r.path.clone())))
        .collect();
    let key = feature_key(
        &spec.model.encoder.encoder_config(),
        &data.image,
        &images,
        spatial,
    )?;
    let pb = crate::progress::bar(images.len() as u64, "encode", quiet);
    let (store, built) = cached(
        &spec.preprocess.feature_cache,
        &key,
        encoder,
        &images,
        spec.eval.batch_size,
        device,
        &mut |done, _| pb.set_position(done as u64),
    )?;
    pb.finish_and_clear();
    let store = std::sync::Arc::new(store);
    let info = FeatureCacheInfo {
        path: store.path().to_path_buf(),
        built,
        images: images.len(),
    };
    let mut offset = 0;
    for split in [&mut data.train, &mut data.val, &mut data.test] {
        split.images = ImageSource::Features {
            store: store.clone(),
            offset,
            spatial,
        };
        offset += split.records.len();
    }
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
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
        encode_images(encoder, imgs, key, 2, out, &device, on_batch)
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

    /// A VGG built without fc6/fc7 writes a spatial entry's grid with pooled features of size
    /// 0, and refuses a pooled-only entry.
    #[test]
    fn grid_only_encoder_writes_a_grid_only_entry() {
        use caplab_models::encoder::VggConfig;
        let scratch = Scratch::new("g");
        let imgs = images(&scratch.0, 3);
        let cfg = ImageConfig::imagenet(32);
        let device = Default::default();
        let encoder = Encoder::Vgg(
            VggConfig::new([1, 1, 1, 1, 1], false)
                .with_widths([4, 4, 4, 4, 4])
                .with_classifier(false)
                .init::<B>(&device),
        );
        let config = EncoderConfig::new(Arch::Vgg11).with_pooled_layers(false);
        let key = feature_key(&config, &cfg, &imgs, true).unwrap();
        let out = scratch.0.join("grid.safetensors");
        encode(&encoder, &imgs, &key, &out, &mut |_, _| {}).unwrap();
        let store = FeatureStore::open(&out, &key).unwrap();
        assert_eq!((store.len(), store.dim()), (3, 0));
        assert_eq!(store.spatial_shape(), Some([4, 2, 2]));
        assert!(store.pooled(1).is_empty());
        let pixels = load_images(&[&imgs[1].1], &cfg).unwrap();
        let x = Tensor::<B, 4>::from_data(TensorData::new(pixels, [1, 3, 32, 32]), &device);
        let g: Vec<f32> = encoder
            .forward_spatial(x)
            .into_data()
            .iter::<f32>()
            .collect();
        let row = store.spatial(1).unwrap();
        assert!(row.iter().zip(&g).all(|(a, b)| (a - b).abs() < 1e-5));

        let pooled_key = feature_key(&config, &cfg, &imgs, false).unwrap();
        let err = encode(
            &encoder,
            &imgs,
            &pooled_key,
            &scratch.0.join("p.safetensors"),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("without its pooled layers"),
            "{err}"
        );
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

        let out = scratch.0.join("x.safetensors");
        let mut noop = |_: usize, _: usize| {};
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
