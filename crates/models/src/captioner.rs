//! `Captioner`: a CNN encoder followed by a recurrent caption decoder.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::decoder::{CaptionDecoder, DecodeState, DecoderSpec};
use crate::encoder::{Arch, Encoder, EncoderConfig};

/// Which encoder parameters are trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Trainable {
    /// The encoder is a fixed feature extractor (no gradient reaches it).
    Frozen,
    /// Every encoder parameter is trained.
    #[default]
    All,
}

/// The `[model.encoder]` section of an experiment spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// Architecture, by torchvision's name (`resnet50`, `vgg16`, `inception_v3`, `resnet_tiny`).
    pub arch: Arch,
    /// Optional torchvision weights (.pth or .safetensors); random initialisation without it.
    #[serde(default)]
    pub weights: Option<std::path::PathBuf>,
    /// Which encoder parameters train: `frozen` or `all`.
    #[serde(default)]
    pub trainable: Trainable,
}

/// The `[model]` section of an experiment spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The image encoder.
    pub encoder: EncoderSpec,
    /// The caption decoder.
    #[serde(default)]
    pub decoder: DecoderSpec,
}

impl ModelSpec {
    /// Builds the captioner for a vocabulary of `vocab_size` words (random weights).
    pub fn init<B: Backend>(&self, vocab_size: usize, device: &B::Device) -> Captioner<B> {
        let encoder = EncoderConfig::new(self.encoder.arch).init(device);
        let decoder = self
            .decoder
            .init(self.encoder.arch.feature_dim(), vocab_size, device);
        Captioner {
            encoder,
            decoder,
            trainable: self.encoder.trainable,
        }
    }
}

/// Image-to-caption model: `encoder` then `decoder`.
#[derive(Module, Debug)]
pub struct Captioner<B: Backend> {
    /// CNN image encoder.
    pub encoder: Encoder<B>,
    /// Recurrent caption decoder.
    pub decoder: CaptionDecoder<B>,
    #[module(skip)]
    trainable: Trainable,
}

impl<B: Backend> Captioner<B> {
    /// Pooled image features [N, F] of normalised images [N, 3, H, W].
    pub fn encode(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let features = self.encoder.forward_pooled(images);
        match self.trainable {
            Trainable::Frozen => features.detach(),
            Trainable::All => features,
        }
    }

    /// Teacher-forced logits [N·K, T, V] for `inputs` [N·K, T]; each image repeats for its K captions.
    pub fn forward(
        &self,
        images: Tensor<B, 4>,
        inputs: Tensor<B, 2, Int>,
        captions_per_image: usize,
    ) -> Tensor<B, 3> {
        let features = repeat_rows(self.encode(images), captions_per_image);
        self.decoder.forward(features, inputs)
    }

    /// Replaces the encoder, e.g. with one that loaded pretrained weights.
    pub fn with_encoder(self, encoder: Encoder<B>) -> Self {
        Self { encoder, ..self }
    }

    /// Starts decoding the given image features.
    pub fn start(&self, features: Tensor<B, 2>) -> DecodeState<B> {
        self.decoder.start(features)
    }
}

/// Repeats every row `k` times in place: rows [a, b] with k = 2 become [a, a, b, b].
pub fn repeat_rows<B: Backend>(x: Tensor<B, 2>, k: usize) -> Tensor<B, 2> {
    if k == 1 {
        return x;
    }
    let [n, f] = x.dims();
    x.unsqueeze_dim::<3>(1)
        .expand([n, k, f])
        .reshape([n * k, f])
}
