//! The built-in synthetic captioning dataset ("shapes"): rendered scenes plus five captions each.
//!
//! Layout written by [`generate`]: `images/000000.jpg …`, `captions.txt` (Kaggle Flickr8k CSV),
//! `splits.json` (Karpathy schema, dataset `shapes`) and `synth_config.json` (the settings).

mod captions;
mod render;
mod scene;

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ::image::codecs::jpeg::JpegEncoder;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::Split;
use crate::error::DataError;
use crate::flickr8k::write_captions_csv;
use crate::karpathy::{write_karpathy, KarpathyFile, KarpathyImage, KarpathySentence};
use crate::tokenizer::tokenize;

pub use captions::CAPTIONS_PER_IMAGE;

/// Settings of the synthetic dataset generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Number of images.
    pub images: usize,
    /// Image side length in pixels (32–1024).
    pub size: u32,
    /// Random seed; the same seed gives byte-identical output.
    pub seed: u64,
    /// Fraction of images in the val split.
    pub val_fraction: f32,
    /// Fraction of images in the test split.
    pub test_fraction: f32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            images: 3000,
            size: 128,
            seed: 7,
            val_fraction: 0.1,
            test_fraction: 0.1,
        }
    }
}

impl SynthConfig {
    /// Checks ranges; returns the `(train, val, test)` image counts.
    pub fn split_sizes(&self) -> Result<(usize, usize, usize), DataError> {
        let frac_ok = |f: f32| f.is_finite() && (0.0..1.0).contains(&f);
        if !frac_ok(self.val_fraction)
            || !frac_ok(self.test_fraction)
            || self.val_fraction + self.test_fraction >= 1.0
        {
            return Err(DataError::Config(format!(
                "synth val_fraction ({}) and test_fraction ({}) must be in [0, 1) and sum to < 1",
                self.val_fraction, self.test_fraction
            )));
        }
        if self.images == 0 {
            return Err(DataError::Config("synth images must be at least 1".into()));
        }
        if !(32..=1024).contains(&self.size) {
            return Err(DataError::Config(format!(
                "synth size must be in 32..=1024, got {}",
                self.size
            )));
        }
        let n = self.images;
        let val = (n as f64 * self.val_fraction as f64).round() as usize;
        let test = (n as f64 * self.test_fraction as f64).round() as usize;
        let val = val.min(n);
        let test = test.min(n - val);
        Ok((n - val - test, val, test))
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// Number of images.
    pub images: usize,
    /// Number of captions (five per image).
    pub captions: usize,
    /// Train images.
    pub train: usize,
    /// Val images.
    pub val: usize,
    /// Test images.
    pub test: usize,
}

/// File name of image `i`.
pub fn image_name(i: usize) -> String {
    format!("{i:06}.jpg")
}

/// Renders image `i` and its captions; deterministic in `(seed, i)`.
fn make_image(cfg: &SynthConfig, i: usize) -> (::image::RgbImage, Vec<String>) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(i as u64);
    let scene = scene::sample_scene(&mut rng, cfg.size);
    let img = render::render(&scene, &mut rng);
    let caps = captions::captions(&scene, &mut rng);
    (img, caps)
}

/// Split of every image: a seeded shuffle, then the first `test` are test, the next `val` are val.
fn assign_splits(cfg: &SynthConfig, val: usize, test: usize) -> Vec<Split> {
    let mut order: Vec<usize> = (0..cfg.images).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_5B11);
    order.shuffle(&mut rng);
    let mut splits = vec![Split::Train; cfg.images];
    for (rank, &i) in order.iter().enumerate() {
        if rank < test {
            splits[i] = Split::Test;
        } else if rank < test + val {
            splits[i] = Split::Val;
        }
    }
    splits
}

fn check_out_dir(out_dir: &Path) -> Result<bool, DataError> {
    if !out_dir.exists() {
        return Ok(false);
    }
    if !out_dir.is_dir() {
        return Err(DataError::OutputExists {
            path: out_dir.to_path_buf(),
        });
    }
    let mut entries = fs::read_dir(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    if entries.next().is_some() {
        return Err(DataError::OutputExists {
            path: out_dir.to_path_buf(),
        });
    }
    Ok(true)
}

/// Generates the dataset into `out_dir` atomically (temporary sibling directory, then rename).
///
/// Fails with [`DataError::OutputExists`] if `out_dir` exists and is not empty.
pub fn generate(cfg: &SynthConfig, out_dir: &Path) -> Result<SynthSummary, DataError> {
    let (train, val, test) = cfg.split_sizes()?;
    let existed_empty = check_out_dir(out_dir)?;
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out_dir
        .file_name()
        .ok_or_else(|| {
            DataError::Config(format!("invalid output directory {}", out_dir.display()))
        })?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
    let tmp = parent.join(format!(
        ".{name}.synth-tmp-{}",
        crate::fsutil::unique_suffix()
    ));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    }
    tracing::info!(
        out = %out_dir.display(),
        images = cfg.images,
        size = cfg.size,
        seed = cfg.seed,
        "generating synthetic shapes dataset"
    );
    let start = Instant::now();
    let result = write_all(cfg, &tmp, val, test).and_then(|summary| {
        if existed_empty {
            fs::remove_dir(out_dir).map_err(|e| DataError::io(out_dir, e))?;
        }
        fs::rename(&tmp, out_dir).map_err(|e| DataError::io(out_dir, e))?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    let summary = result?;
    debug_assert_eq!(summary.train, train);
    tracing::info!(
        out = %out_dir.display(),
        images = summary.images,
        captions = summary.captions,
        train = summary.train,
        val = summary.val,
        test = summary.test,
        seconds = start.elapsed().as_secs_f32(),
        "synthetic dataset written"
    );
    Ok(summary)
}

fn write_all(
    cfg: &SynthConfig,
    dir: &Path,
    val: usize,
    test: usize,
) -> Result<SynthSummary, DataError> {
    let images_dir = dir.join("images");
    fs::create_dir_all(&images_dir).map_err(|e| DataError::io(&images_dir, e))?;
    let captions: Vec<Vec<String>> = (0..cfg.images)
        .into_par_iter()
        .map(|i| {
            let (img, caps) = make_image(cfg, i);
            let path = images_dir.join(image_name(i));
            let mut bytes = Cursor::new(Vec::with_capacity(8 * 1024));
            JpegEncoder::new_with_quality(&mut bytes, 92)
                .encode_image(&img)
                .map_err(|e| DataError::Image {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            fs::write(&path, bytes.into_inner()).map_err(|e| DataError::io(&path, e))?;
            Ok(caps)
        })
        .collect::<Result<_, DataError>>()?;
    let splits = assign_splits(cfg, val, test);
    let mut rows = Vec::with_capacity(cfg.images * CAPTIONS_PER_IMAGE);
    let mut entries = Vec::with_capacity(cfg.images);
    let mut sentid = 0u64;
    for (i, caps) in captions.iter().enumerate() {
        let filename = image_name(i);
        let mut sentences = Vec::with_capacity(caps.len());
        for raw in caps {
            rows.push((filename.clone(), raw.clone()));
            sentences.push(KarpathySentence {
                raw: raw.clone(),
                tokens: tokenize(raw),
                imgid: i as u64,
                sentid,
            });
            sentid += 1;
        }
        entries.push(KarpathyImage {
            filepath: None,
            filename,
            imgid: i as u64,
            split: splits[i].as_str().to_string(),
            sentids: sentences.iter().map(|s| s.sentid).collect(),
            sentences,
            cocoid: None,
        });
    }
    write_captions_csv(&dir.join("captions.txt"), &rows)?;
    write_karpathy(
        &dir.join("splits.json"),
        &KarpathyFile {
            dataset: "shapes".into(),
            images: entries,
        },
    )?;
    let cfg_path = dir.join("synth_config.json");
    let cfg_json =
        serde_json::to_vec_pretty(cfg).map_err(|e| DataError::parse(&cfg_path, e.to_string()))?;
    fs::write(&cfg_path, cfg_json).map_err(|e| DataError::io(&cfg_path, e))?;
    let count = |s: Split| splits.iter().filter(|x| **x == s).count();
    Ok(SynthSummary {
        images: cfg.images,
        captions: rows.len(),
        train: count(Split::Train),
        val: count(Split::Val),
        test: count(Split::Test),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetConfig;
    use crate::load::load_dataset;
    use crate::vocab::{Vocab, VocabConfig};

    fn small(seed: u64) -> SynthConfig {
        SynthConfig {
            images: 40,
            size: 64,
            seed,
            val_fraction: 0.1,
            test_fraction: 0.2,
        }
    }

    fn read_all(dir: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
        let caps = fs::read(dir.join("captions.txt")).unwrap();
        let imgs = (0..40)
            .map(|i| fs::read(dir.join("images").join(image_name(i))).unwrap())
            .collect();
        (caps, imgs)
    }

    #[test]
    fn deterministic_for_a_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        generate(&small(3), &a).unwrap();
        generate(&small(3), &b).unwrap();
        generate(&small(4), &c).unwrap();
        let (ra, rb, rc) = (read_all(&a), read_all(&b), read_all(&c));
        assert_eq!(ra, rb);
        assert_eq!(
            fs::read(a.join("splits.json")).unwrap(),
            fs::read(b.join("splits.json")).unwrap()
        );
        assert_ne!(ra.0, rc.0);
        assert_ne!(ra.1[0], rc.1[0]);
    }

    #[test]
    fn writes_loadable_dataset_with_splits() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("nested/shapes");
        let summary = generate(&small(1), &out).unwrap();
        assert_eq!(
            summary,
            SynthSummary {
                images: 40,
                captions: 200,
                train: 28,
                val: 4,
                test: 8
            }
        );
        let ds = load_dataset(&DatasetConfig::synth(&out)).unwrap();
        assert_eq!(ds.name, "shapes");
        assert_eq!(ds.images.len(), 40);
        assert_eq!(ds.split_len(Split::Val), 4);
        assert_eq!(ds.split_len(Split::Test), 8);
        for r in &ds.images {
            assert_eq!(r.captions.len(), 5);
            let mut toks: Vec<_> = r.captions.iter().map(|c| tokenize(c)).collect();
            toks.sort();
            toks.dedup();
            assert_eq!(toks.len(), 5, "captions not distinct: {:?}", r.captions);
        }
        let img = ::image::open(&ds.images[0].path).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
        let leftovers: Vec<_> = fs::read_dir(out.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary directory left behind");
    }

    #[test]
    fn refuses_non_empty_output_and_accepts_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("shapes");
        fs::create_dir(&out).unwrap();
        let mut cfg = small(1);
        cfg.images = 3;
        generate(&cfg, &out).unwrap();
        let err = generate(&cfg, &out).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        cfg.val_fraction = 0.9;
        let err = generate(&cfg, &tmp.path().join("x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("val_fraction"), "{err}");
    }

    #[test]
    fn split_fractions() {
        assert_eq!(
            SynthConfig::default().split_sizes().unwrap(),
            (2400, 300, 300)
        );
        let cfg = SynthConfig {
            images: 7,
            ..SynthConfig::default()
        };
        assert_eq!(cfg.split_sizes().unwrap(), (5, 1, 1));
        let splits = assign_splits(&SynthConfig::default(), 300, 300);
        assert_eq!(splits.iter().filter(|s| **s == Split::Val).count(), 300);
        // Prefixes stay roughly proportional (a seeded shuffle, not blocks).
        let first = &splits[..1000];
        let test = first.iter().filter(|s| **s == Split::Test).count();
        assert!((60..140).contains(&test), "{test}");
    }

    #[test]
    fn captions_are_grounded_varied_and_small_vocab() {
        let cfg = SynthConfig {
            images: 600,
            size: 64,
            ..SynthConfig::default()
        };
        let mut all = Vec::new();
        for i in 0..cfg.images {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64);
            let sc = scene::sample_scene(&mut rng, cfg.size);
            let caps = captions::captions(&sc, &mut rng);
            assert_eq!(caps.len(), CAPTIONS_PER_IMAGE, "{sc:?}");
            let mut toks: Vec<Vec<String>> = caps.iter().map(|c| tokenize(c)).collect();
            for t in &toks {
                assert!((5..=20).contains(&t.len()), "{t:?}");
            }
            toks.sort();
            toks.dedup();
            assert_eq!(toks.len(), CAPTIONS_PER_IMAGE, "{caps:?}");
            all.extend(caps);
        }
        let vocab = Vocab::build(all.iter().map(String::as_str), &VocabConfig::default());
        assert!(vocab.len() <= 130, "vocabulary too large: {}", vocab.len());
        assert!(vocab.len() >= 60, "vocabulary too small: {}", vocab.len());
    }
}
