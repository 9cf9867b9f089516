//! Training and validation items, the batcher that pads captions per batch, and the decoder
//! features of a batch (pixels through the encoder, or rows of the feature cache).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use caplab_data::error::DataError;
use caplab_data::features::FeatureStore;
use caplab_data::image::{load_image, ImageConfig};
use caplab_data::vocab::Vocab;
use caplab_models::attention::grid_to_sequence;
use caplab_models::{Captioner, Decoder, Features};

/// Images decoded in this process (the feature cache's promise is that this stays 0).
pub static IMAGES_DECODED: AtomicUsize = AtomicUsize::new(0);

/// Decodes one image, counting it.
pub fn decode_counted(path: &std::path::Path, cfg: &ImageConfig) -> Result<Vec<f32>, DataError> {
    IMAGES_DECODED.fetch_add(1, Ordering::Relaxed);
    load_image(path, cfg)
}

/// What a split's items carry: pixels (decoded once or on demand) or cached encoder features.
#[derive(Clone)]
pub enum ImageSource {
    /// CHW normalised pixels held in memory, one entry per image.
    Memory(Arc<Vec<Arc<[f32]>>>),
    /// Files decoded by the loader's worker thread when a batch is built.
    Disk(Arc<Vec<PathBuf>>, ImageConfig),
    /// Rows `offset..` of a feature cache (pooled, or spatial when `spatial`).
    Features {
        /// The memory-mapped cache.
        store: Arc<FeatureStore>,
        /// Row of this split's first image.
        offset: usize,
        /// Whether items carry the spatial grid rather than the pooled vector.
        spatial: bool,
    },
}

impl ImageSource {
    /// The values of item `index`: CHW pixels, or features.
    pub fn values(&self, index: usize) -> Arc<[f32]> {
        match self {
            ImageSource::Memory(images) => images[index].clone(),
            ImageSource::Disk(paths, cfg) => match decode_counted(&paths[index], cfg) {
                Ok(px) => px.into(),
                // Files were checked when the dataset loaded; a file that breaks mid-run stops
                // the run with its name, and the last epoch's checkpoint stays resumable.
                Err(e) => panic!("{e}"),
            },
            ImageSource::Features {
                store,
                offset,
                spatial,
            } => {
                let row = offset + index;
                let values = if *spatial {
                    store.spatial(row).unwrap_or_else(|| store.pooled(row))
                } else {
                    store.pooled(row)
                };
                values.into()
            }
        }
    }

    /// The [C, H, W] shape of one item for images of side `size`.
    pub fn item_shape(&self, size: usize) -> [usize; 3] {
        match self {
            ImageSource::Features {
                store,
                spatial: true,
                ..
            } => store.spatial_shape().unwrap_or([store.dim(), 1, 1]),
            ImageSource::Features { store, .. } => [store.dim(), 1, 1],
            _ => [3, size, size],
        }
    }

    /// Whether items are encoder features rather than pixels.
    pub fn precomputed(&self) -> bool {
        matches!(self, ImageSource::Features { .. })
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
pub struct CaptionItems {
    images: ImageSource,
    captions: Vec<Vec<Vec<u32>>>,
}

impl CaptionItems {
    /// Pairs an image source with tokenised captions (one list per image).
    pub fn new(images: ImageSource, captions: Vec<Vec<Vec<u32>>>) -> Self {
        Self { images, captions }
    }
}

impl Dataset<CaptionItem> for CaptionItems {
    fn get(&self, index: usize) -> Option<CaptionItem> {
        let captions = self.captions.get(index)?.clone();
        Some(CaptionItem {
            index,
            pixels: self.images.values(index),
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
    /// Normalised images [N, 3, S, S], or cached features [N, F, 1, 1] / [N, C, h, w].
    pub images: Tensor<B, 4>,
    /// Whether `images` holds cached encoder features.
    pub precomputed: bool,
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
    /// Shape [C, H, W] of one item's values.
    pub shape: [usize; 3],
    /// Whether items carry cached features.
    pub precomputed: bool,
    /// Captions per image in a batch; an image with fewer cycles through its own.
    pub captions_per_image: usize,
}

impl<B: Backend> Batcher<B, CaptionItem, CaptionBatch<B>> for CaptionBatcher {
    fn batch(&self, items: Vec<CaptionItem>, device: &B::Device) -> CaptionBatch<B> {
        let n = items.len();
        let k = self.captions_per_image;
        let [c, h, w] = self.shape;
        let mut pixels = Vec::with_capacity(n * c * h * w);
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
            images: Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device),
            precomputed: self.precomputed,
            inputs: Tensor::from_data(TensorData::new(inputs, [rows_n, t]), device),
            targets: Tensor::from_data(TensorData::new(targets, [rows_n, t]), device),
            captions_per_image: k,
            indices: items.iter().map(|i| i.index).collect(),
        }
    }
}
/// Decoder features of a batch: from cached features [N, F, 1, 1] / [N, C, h, w], or by
/// running the encoder on images.
pub fn batch_features<B: Backend>(
    captioner: &Captioner<B>,
    values: Tensor<B, 4>,
    precomputed: bool,
) -> Features<B> {
    if !precomputed {
        return captioner.features(values);
    }
    match &captioner.decoder {
        Decoder::Rnn(_) => {
            let [n, f, _, _] = values.dims();
            Features::Pooled(values.reshape([n, f]))
        }
        Decoder::Attention(_) | Decoder::Transformer(_) => Features::Grid(grid_to_sequence(values)),
    }
}
