//! Training and validation items and the batcher that pads captions per batch.

use std::path::PathBuf;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use caplab_data::image::{load_image, ImageConfig};
use caplab_data::vocab::Vocab;

/// Pixels of every image of a split, decoded once, or decoded on demand from disk.
#[derive(Clone)]
pub enum ImageSource {
    /// CHW normalised pixels held in memory, one entry per image.
    Memory(Arc<Vec<Arc<[f32]>>>),
    /// Files decoded by the loader's worker thread when a batch is built.
    Disk(Arc<Vec<PathBuf>>, ImageConfig),
}

impl ImageSource {
    fn pixels(&self, index: usize) -> Arc<[f32]> {
        match self {
            ImageSource::Memory(images) => images[index].clone(),
            ImageSource::Disk(paths, cfg) => match load_image(&paths[index], cfg) {
                Ok(px) => px.into(),
                // Files were checked when the dataset loaded; a file that breaks mid-run stops
                // the run with its name, and the last epoch's checkpoint stays resumable.
                Err(e) => panic!("{e}"),
            },
        }
    }
}

/// One image with the token ids of its captions (no `<sos>`/`<eos>`).
#[derive(Clone, Debug)]
pub struct CaptionItem {
    /// Index of the image within its split.
    pub index: usize,
    /// CHW normalised pixels.
    pub pixels: Arc<[f32]>,
    /// Captions as token ids, already cut to the maximum length.
    pub captions: Vec<Vec<u32>>,
}

/// The images of one split with their tokenised captions.
pub struct CaptionDataset {
    images: ImageSource,
    captions: Vec<Vec<Vec<u32>>>,
}

impl CaptionDataset {
    /// Pairs an image source with tokenised captions (one list per image).
    pub fn new(images: ImageSource, captions: Vec<Vec<Vec<u32>>>) -> Self {
        Self { images, captions }
    }
}

impl Dataset<CaptionItem> for CaptionDataset {
    fn get(&self, index: usize) -> Option<CaptionItem> {
        let captions = self.captions.get(index)?.clone();
        Some(CaptionItem {
            index,
            pixels: self.images.pixels(index),
            captions,
        })
    }

    fn len(&self) -> usize {
        self.captions.len()
    }
}

/// A batch: N images, each with K captions (`inputs` start with `<sos>`, `targets` end with `<eos>`).
#[derive(Clone, Debug)]
pub struct CaptionBatch<B: Backend> {
    /// Normalised images [N, 3, S, S].
    pub images: Tensor<B, 4>,
    /// Decoder inputs [N·K, T]: `<sos> w1 … wn <pad>…`.
    pub inputs: Tensor<B, 2, Int>,
    /// Targets [N·K, T]: `w1 … wn <eos> <pad>…`.
    pub targets: Tensor<B, 2, Int>,
    /// Captions per image (K).
    pub captions_per_image: usize,
    /// Index of each image within its split.
    pub indices: Vec<usize>,
}

/// Builds [`CaptionBatch`]es: K captions per image, padded to the longest in the batch.
#[derive(Clone, Debug)]
pub struct CaptionBatcher {
    /// Image side in pixels.
    pub size: usize,
    /// Captions per image in a batch; an image with fewer cycles through its own.
    pub captions_per_image: usize,
}

impl<B: Backend> Batcher<B, CaptionItem, CaptionBatch<B>> for CaptionBatcher {
    fn batch(&self, items: Vec<CaptionItem>, device: &B::Device) -> CaptionBatch<B> {
        let n = items.len();
        let k = self.captions_per_image;
        let s = self.size;
        let mut pixels = Vec::with_capacity(n * 3 * s * s);
        let mut rows: Vec<&[u32]> = Vec::with_capacity(n * k);
        for item in &items {
            pixels.extend_from_slice(&item.pixels);
            for j in 0..k {
                rows.push(if item.captions.is_empty() {
                    &[]
                } else {
                    &item.captions[j % item.captions.len()]
                });
            }
        }
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0) + 1;
        let pad = Vocab::PAD as i64;
        let mut inputs = vec![pad; rows.len() * t];
        let mut targets = vec![pad; rows.len() * t];
        for (r, words) in rows.iter().enumerate() {
            let base = r * t;
            inputs[base] = Vocab::SOS as i64;
            for (j, w) in words.iter().enumerate() {
                inputs[base + j + 1] = *w as i64;
                targets[base + j] = *w as i64;
            }
            targets[base + words.len()] = Vocab::EOS as i64;
        }
        let rows_n = rows.len();
        CaptionBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, 3, s, s]), device),
            inputs: Tensor::from_data(TensorData::new(inputs, [rows_n, t]), device),
            targets: Tensor::from_data(TensorData::new(targets, [rows_n, t]), device),
            captions_per_image: k,
            indices: items.iter().map(|i| i.index).collect(),
        }
    }
}
