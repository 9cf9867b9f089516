//! `Captioner`: a CNN encoder followed by a caption decoder (an RNN, Show-Attend-Tell attention or
//! a transformer).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::{grid_to_sequence, AttentionDecoder, AttentionDecoderConfig};
use crate::decoder::{CaptionDecoder, DecoderSpec};
use crate::encoder::{Arch, Backbone, Encoder, EncoderConfig};
use crate::search::{in_shares, GreedySearch, Hypothesis, SearchSpec};
use crate::spec_error::SpecError;
use crate::transformer::{TransformerCaptionDecoder, TransformerSpec};

/// Which encoder parameters are trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Trainable {
    /// The encoder is a fixed feature extractor (no gradient reaches it); features are cached.
    Frozen,
    /// Only the encoder's last block trains (ResNet `layer4`, VGG conv5 + fc6/fc7 where built,
    /// Inception `Mixed_7c`, a vision transformer's last encoder block and the layers after it).
    LastBlock,
    /// Every encoder parameter is trained.
    #[default]
    All,
}

/// The `[model.encoder]` section of an experiment spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// Architecture, by torchvision's name (`resnet50`, `vgg16`, `inception_v3`, `vit_b_16`,
    /// `resnet_tiny`), or `clip_` + open_clip's for CLIP's image towers (`clip_vit_b_32`,
    /// `clip_vit_b_32_quickgelu`).
    pub arch: Arch,
    /// Optional torchvision weights (.pth or .safetensors), open_clip's for a CLIP tower; random
    /// initialisation without it.
    #[serde(default)]
    pub weights: Option<std::path::PathBuf>,
    /// Which encoder parameters train: `frozen`, `last_block` or `all`.
    #[serde(default)]
    pub trainable: Trainable,
    /// With `trainable = "last_block"`: from this epoch on (1-based, after N epochs) the whole
    /// encoder trains, at `finetune_lr`.
    #[serde(default)]
    pub finetune_after: Option<usize>,
    /// Learning rate of the encoder while fine-tuning (the decoder keeps the schedule's rate).
    #[serde(default = "default_finetune_lr")]
    pub finetune_lr: f64,
    /// Inception v3 only: torchvision's `transform_input` (default true, as its pretrained weights).
    #[serde(default)]
    pub transform_input: Option<bool>,
}

impl EncoderSpec {
    /// The encoder configuration this section describes (weights path included), with the
    /// pooled feature's layers ([`EncoderConfig::pooled_layers`]); [`ModelSpec::encoder_config`]
    /// leaves them out where the decoder reads only the spatial grid.
    pub fn encoder_config(&self) -> EncoderConfig {
        EncoderConfig::new(self.arch)
            .with_weights(self.weights.clone())
            .with_transform_input(self.transform_input.unwrap_or(true))
    }
}

fn default_finetune_lr() -> f64 {
    1e-4
}

/// Which caption decoder a [`ModelSpec`] builds: exactly one of `[model.decoder]`,
/// `[model.attention]` or `[model.transformer]`.
#[derive(Clone, Debug, PartialEq)]
pub enum DecoderChoice {
    /// `[model.decoder]`: an RNN conditioned on the pooled feature (also when neither key is set).
    Rnn(DecoderSpec),
    /// `[model.attention]`: Show-Attend-Tell soft attention over the encoder's spatial grid.
    Attention(AttentionDecoderConfig),
    /// `[model.transformer]`: a transformer decoder attending over the spatial grid.
    Transformer(TransformerSpec),
}

impl Default for DecoderChoice {
    fn default() -> Self {
        DecoderChoice::Rnn(DecoderSpec::default())
    }
}

impl DecoderChoice {
    /// Whether the decoder attends over the spatial grid (and so needs spatial features):
    /// soft attention or a transformer.
    pub fn is_attention(&self) -> bool {
        matches!(
            self,
            DecoderChoice::Attention(_) | DecoderChoice::Transformer(_)
        )
    }

    /// The spec section of this decoder: `model.decoder`, `model.attention` or `model.transformer`.
    pub fn section(&self) -> &'static str {
        match self {
            DecoderChoice::Rnn(_) => "model.decoder",
            DecoderChoice::Attention(_) => "model.attention",
            DecoderChoice::Transformer(_) => "model.transformer",
        }
    }

    /// Word embedding size of the decoder (`d_model` for a transformer).
    pub fn embed_dim(&self) -> usize {
        match self {
            DecoderChoice::Rnn(d) => d.embed_dim,
            DecoderChoice::Attention(a) => a.embed_dim,
            DecoderChoice::Transformer(t) => t.d_model,
        }
    }

    /// Checks that captions of `words` words fit the decoder (a transformer's learned position
    /// table); the error names `key`, the setting asking for that length.
    pub fn check_length(&self, key: &str, words: usize) -> Result<(), SpecError> {
        match self {
            DecoderChoice::Transformer(t) => t.check_length(key, words),
            _ => Ok(()),
        }
    }
}

/// The `[model]` section of an experiment spec.
///
/// In TOML the decoder is one of three keys, `[model.decoder]` (RNN), `[model.attention]` or
/// `[model.transformer]`; setting more than one is an error naming them, and serialising lists
/// only the one that applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModelSpec", into = "RawModelSpec")]
pub struct ModelSpec {
    /// The image encoder.
    pub encoder: EncoderSpec,
    /// The caption decoder.
    pub decoder: DecoderChoice,
    /// Word vectors in GloVe's text format initialising the word embeddings (dimension = embed_dim).
    pub word_vectors: Option<std::path::PathBuf>,
}

/// `[model]` as written in TOML: the decoder choice as three optional keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelSpec {
    encoder: EncoderSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decoder: Option<DecoderSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attention: Option<AttentionDecoderConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transformer: Option<TransformerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    word_vectors: Option<std::path::PathBuf>,
}

impl TryFrom<RawModelSpec> for ModelSpec {
    type Error = String;

    fn try_from(raw: RawModelSpec) -> Result<Self, String> {
        let set = [
            ("model.decoder", raw.decoder.is_some()),
            ("model.attention", raw.attention.is_some()),
            ("model.transformer", raw.transformer.is_some()),
        ];
        let chosen: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect();
        if chosen.len() > 1 {
            return Err(format!(
                "{} are alternatives: set one of model.decoder, model.attention and \
                 model.transformer, not several",
                chosen.join(" and ")
            ));
        }
        let decoder = match (raw.decoder, raw.attention, raw.transformer) {
            (_, Some(attention), _) => DecoderChoice::Attention(attention),
            (_, _, Some(transformer)) => DecoderChoice::Transformer(transformer),
            (decoder, None, None) => DecoderChoice::Rnn(decoder.unwrap_or_default()),
        };
        Ok(ModelSpec {
            encoder: raw.encoder,
            decoder,
            word_vectors: raw.word_vectors,
        })
    }
}

impl From<ModelSpec> for RawModelSpec {
    fn from(spec: ModelSpec) -> Self {
        let (decoder, attention, transformer) = match spec.decoder {
            DecoderChoice::Rnn(d) => (Some(d), None, None),
            DecoderChoice::Attention(a) => (None, Some(a), None),
            DecoderChoice::Transformer(t) => (None, None, Some(t)),
        };
        RawModelSpec {
            encoder: spec.encoder,
            decoder,
            attention,
            transformer,
            word_vectors: spec.word_vectors,
        }
    }
}

impl ModelSpec {
    /// Checks every `model.*` value serde cannot: ranges of the decoder's sizes and rates, and
    /// the encoder's options against its architecture and training mode.
    pub fn validate(&self) -> Result<(), SpecError> {
        let e = &self.encoder;
        if e.finetune_after.is_some() && e.trainable != Trainable::LastBlock {
            return Err(SpecError::new(
                "model.encoder.finetune_after",
                "needs model.encoder.trainable = \"last_block\" \
                 (a frozen encoder reads cached features, `all` already trains everything)",
            ));
        }
        if e.transform_input.is_some() && e.arch != Arch::InceptionV3 {
            return Err(SpecError::new(
                "model.encoder.transform_input",
                format!("applies to inception_v3 only, not {}", e.arch),
            ));
        }
        if !(e.finetune_lr.is_finite() && e.finetune_lr > 0.0) {
            return Err(SpecError::new(
                "model.encoder.finetune_lr",
                format!("must be a number > 0, got {}", e.finetune_lr),
            ));
        }
        match &self.decoder {
            DecoderChoice::Rnn(d) => d.validate(),
            DecoderChoice::Attention(a) => a.validate(),
            DecoderChoice::Transformer(t) => t.validate(),
        }
    }

    /// The encoder configuration of the captioner: [`EncoderSpec::encoder_config`], without the
    /// pooled feature's layers (VGG's fc6/fc7) when the decoder reads only the spatial grid
    /// (attention, transformer).
    pub fn encoder_config(&self) -> EncoderConfig {
        self.encoder
            .encoder_config()
            .with_pooled_layers(!self.decoder.is_attention())
    }

    /// Builds the captioner for a vocabulary of `vocab_size` words (random weights).
    pub fn init<B: Backend>(&self, vocab_size: usize, device: &B::Device) -> Captioner<B> {
        let arch = self.encoder.arch;
        let encoder = self.encoder_config().init(device);
        let decoder = match &self.decoder {
            DecoderChoice::Attention(att) => {
                Decoder::Attention(att.init(arch.spatial_channels(), vocab_size, device))
            }
            DecoderChoice::Rnn(rnn) => {
                Decoder::Rnn(rnn.init(arch.feature_dim(), vocab_size, device))
            }
            DecoderChoice::Transformer(t) => {
                Decoder::Transformer(t.init(arch.spatial_channels(), vocab_size, device))
            }
        };
        Captioner {
            encoder,
            decoder,
            trainable: self.encoder.trainable,
        }
    }
}

/// The caption decoder of a [`Captioner`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Decoder<B: Backend> {
    /// An RNN conditioned on the pooled image feature.
    Rnn(CaptionDecoder<B>),
    /// Soft attention over the spatial grid (Show, Attend and Tell).
    Attention(AttentionDecoder<B>),
    /// A transformer decoder attending over the spatial grid.
    Transformer(TransformerCaptionDecoder<B>),
}

impl<B: Backend> Decoder<B> {
    /// Whether the decoder reads the spatial grid (soft attention or a transformer) rather than
    /// the pooled feature.
    pub fn reads_grid(&self) -> bool {
        !matches!(self, Decoder::Rnn(_))
    }
}

/// Image features as the decoder consumes them.
#[derive(Clone, Debug)]
pub enum Features<B: Backend> {
    /// Pooled vectors [N, F].
    Pooled(Tensor<B, 2>),
    /// Spatial annotations [N, L, D].
    Grid(Tensor<B, 3>),
}

impl<B: Backend> Features<B> {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            Features::Pooled(t) => t.dims()[0],
            Features::Grid(t) => t.dims()[0],
        }
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` images from `from`.
    pub fn rows(&self, from: usize, len: usize) -> Self {
        match self {
            Features::Pooled(x) => Features::Pooled(x.clone().narrow(0, from, len)),
            Features::Grid(x) => Features::Grid(x.clone().narrow(0, from, len)),
        }
    }

    /// Repeats every image `k` times in place ([a, b] → [a, a, b, b]).
    pub fn repeat_rows(self, k: usize) -> Self {
        if k == 1 {
            return self;
        }
        match self {
            Features::Pooled(x) => Features::Pooled(repeat_rows(x, k)),
            Features::Grid(x) => {
                let [n, l, d] = x.dims();
                Features::Grid(
                    x.unsqueeze_dim::<4>(1)
                        .expand([n, k, l, d])
                        .reshape([n * k, l, d]),
                )
            }
        }
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> Features<B> {
    /// The same values on the inner backend, detached from the autodiff graph: what decoding
    /// with the model's inference copy reads (SCST samples from the features it trains on).
    pub fn inner(&self) -> Features<B::InnerBackend> {
        match self {
            Features::Pooled(t) => Features::Pooled(t.clone().inner()),
            Features::Grid(t) => Features::Grid(t.clone().inner()),
        }
    }
}

/// Attention weights per image, per generated word, per grid location (`maps[image][word][l]`).
pub type AttentionMaps = Vec<Vec<Vec<f32>>>;

/// Teacher-forced output of a [`Captioner`].
pub struct CaptionerOutput<B: Backend> {
    /// Logits [N, T, V].
    pub logits: Tensor<B, 3>,
    /// Attention weights [N, T, L] of an attention decoder.
    pub alphas: Option<Tensor<B, 3>>,
}

/// Image-to-caption model: `encoder` then `decoder`.
#[derive(Module, Debug)]
pub struct Captioner<B: Backend> {
    /// CNN image encoder.
    pub encoder: Encoder<B>,
    /// Caption decoder.
    pub decoder: Decoder<B>,
    #[module(skip)]
    trainable: Trainable,
}

impl<B: Backend> Captioner<B> {
    /// Features of normalised images [N, 3, H, W], in the form the decoder consumes.
    pub fn features(&self, images: Tensor<B, 4>) -> Features<B> {
        self.features_with(images, self.trainable)
    }

    /// [`features`](Self::features) with the encoder trained as `trainable` says (fine-tuning
    /// switches from `last_block` to `all` mid-training).
    pub fn features_with(&self, images: Tensor<B, 4>, trainable: Trainable) -> Features<B> {
        if trainable == Trainable::LastBlock {
            let cut = |x: Tensor<B, 4>| x.detach();
            return match &self.decoder {
                Decoder::Rnn(_) => Features::Pooled(self.encoder.forward_both_cut(images, &cut).0),
                Decoder::Attention(_) | Decoder::Transformer(_) => Features::Grid(
                    grid_to_sequence(self.encoder.forward_spatial_cut(images, &cut)),
                ),
            };
        }
        let features = match &self.decoder {
            Decoder::Rnn(_) => Features::Pooled(self.encoder.forward_pooled(images)),
            Decoder::Attention(_) | Decoder::Transformer(_) => {
                Features::Grid(grid_to_sequence(self.encoder.forward_spatial(images)))
            }
        };
        match (trainable, features) {
            (Trainable::All | Trainable::LastBlock, f) => f,
            (Trainable::Frozen, Features::Pooled(x)) => Features::Pooled(x.detach()),
            (Trainable::Frozen, Features::Grid(x)) => Features::Grid(x.detach()),
        }
    }

    /// All-zero features for `n` images: what the decoder says without looking.
    pub fn blind_features(&self, n: usize, arch: Arch, device: &B::Device) -> Features<B> {
        match &self.decoder {
            Decoder::Rnn(_) => Features::Pooled(Tensor::zeros([n, arch.feature_dim()], device)),
            Decoder::Attention(_) | Decoder::Transformer(_) => {
                let l = arch.spatial_size() * arch.spatial_size();
                Features::Grid(Tensor::zeros([n, l, arch.spatial_channels()], device))
            }
        }
    }

    /// Teacher-forced logits for `inputs` [N·K, T]; each image repeats for its K captions.
    pub fn forward(
        &self,
        images: Tensor<B, 4>,
        inputs: Tensor<B, 2, Int>,
        captions_per_image: usize,
    ) -> CaptionerOutput<B> {
        let features = self.features(images).repeat_rows(captions_per_image);
        self.forward_features(features, inputs)
    }

    /// Teacher-forced logits from features already repeated per caption.
    pub fn forward_features(
        &self,
        features: Features<B>,
        inputs: Tensor<B, 2, Int>,
    ) -> CaptionerOutput<B> {
        match (&self.decoder, features) {
            (Decoder::Rnn(d), Features::Pooled(x)) => CaptionerOutput {
                logits: d.forward(x, inputs),
                alphas: None,
            },
            (Decoder::Attention(d), Features::Grid(x)) => {
                let (logits, alphas) = d.forward(x, inputs);
                CaptionerOutput {
                    logits,
                    alphas: Some(alphas),
                }
            }
            (Decoder::Rnn(d), Features::Grid(x)) => CaptionerOutput {
                logits: d.forward(x.mean_dim(1).squeeze_dim::<2>(1), inputs),
                alphas: None,
            },
            (Decoder::Attention(d), Features::Pooled(x)) => {
                let (logits, alphas) = d.forward(x.unsqueeze_dim::<3>(1), inputs);
                CaptionerOutput {
                    logits,
                    alphas: Some(alphas),
                }
            }
            // The cross-attention maps (last layer, mean over heads) for overlays; no
            // regulariser reads them (`attention_loss` is `None`).
            (Decoder::Transformer(d), features) => {
                let (logits, alphas) = d.forward(grid_of(features), inputs);
                CaptionerOutput {
                    logits,
                    alphas: Some(alphas),
                }
            }
        }
    }

    /// Scheduled-sampling logits (see [`CaptionDecoder::forward_scheduled`]); `None` for an
    /// attention decoder, which trains with teacher forcing only.
    pub fn forward_scheduled(
        &self,
        features: Features<B>,
        inputs: Tensor<B, 2, Int>,
        use_prediction: Tensor<B, 2, burn::tensor::Bool>,
    ) -> Option<Tensor<B, 3>> {
        match (&self.decoder, features) {
            (Decoder::Rnn(d), Features::Pooled(x)) => {
                Some(d.forward_scheduled(x, inputs, use_prediction))
            }
            _ => None,
        }
    }

    /// Doubly stochastic attention regularisation (`None` for an RNN or transformer decoder).
    pub fn attention_loss(&self, alphas: Tensor<B, 3>, mask: Tensor<B, 2>) -> Option<Tensor<B, 1>> {
        match &self.decoder {
            Decoder::Attention(d) => Some(d.doubly_stochastic_loss(alphas, mask)),
            Decoder::Rnn(_) | Decoder::Transformer(_) => None,
        }
    }

    /// Decodes every image of `features` with `search`; best caption per image.
    ///
    /// `threads` > 1 splits the images into that many equal shares decoded side by side on
    /// rayon's threads ([`in_shares`]). The CPU backend runs its element-wise kernels (the
    /// activations, the log-softmax) on one thread, so one share per core keeps every core busy;
    /// a GPU wants 1. The captions do not depend on the split: each image's rows go through the
    /// same kernels (test `split_decoding_gives_the_same_captions`). Sampling is never split:
    /// its draws come from one generator over the whole batch.
    pub fn caption(
        &self,
        features: Features<B>,
        search: &SearchSpec,
        sos: u32,
        eos: u32,
        unk: Option<u32>,
        threads: usize,
    ) -> Vec<Hypothesis> {
        let threads = match search {
            SearchSpec::Sample { .. } => 1,
            _ => threads,
        };
        in_shares(features.len(), threads, |from, len| {
            self.caption_batch(features.rows(from, len), search, sos, eos, unk)
        })
    }

    /// [`Captioner::caption`] of one batch, on the calling thread.
    fn caption_batch(
        &self,
        features: Features<B>,
        search: &SearchSpec,
        sos: u32,
        eos: u32,
        unk: Option<u32>,
    ) -> Vec<Hypothesis> {
        let n = features.len();
        match (&self.decoder, features) {
            (Decoder::Rnn(d), Features::Pooled(x)) => {
                let device = x.device();
                search.decode(d, d.start(x), n, &device, sos, eos, unk)
            }
            (Decoder::Attention(d), Features::Grid(x)) => {
                let device = x.device();
                search.decode(d, d.start(x), n, &device, sos, eos, unk)
            }
            (Decoder::Rnn(d), Features::Grid(x)) => {
                let device = x.device();
                let pooled = x.mean_dim(1).squeeze_dim::<2>(1);
                search.decode(d, d.start(pooled), n, &device, sos, eos, unk)
            }
            (Decoder::Attention(d), Features::Pooled(x)) => {
                let device = x.device();
                search.decode(
                    d,
                    d.start(x.unsqueeze_dim::<3>(1)),
                    n,
                    &device,
                    sos,
                    eos,
                    unk,
                )
            }
            (Decoder::Transformer(d), features) => {
                let grid = grid_of(features);
                let device = grid.device();
                search.decode(d, d.start(grid), n, &device, sos, eos, unk)
            }
        }
    }

    /// Greedy captions with one attention map per word (`None` for an RNN decoder); a
    /// transformer's maps are its last layer's cross-attention, mean over heads.
    pub fn attend(
        &self,
        features: Features<B>,
        search: &GreedySearch,
    ) -> Option<(Vec<Hypothesis>, AttentionMaps)> {
        match (&self.decoder, features) {
            (Decoder::Attention(d), Features::Grid(x)) => Some(d.attend_greedy(search, x)),
            (Decoder::Transformer(d), Features::Grid(x)) => Some(d.attend_greedy(search, x)),
            _ => None,
        }
    }

    /// Initialises the decoder's word embeddings from `rows` (one per vocabulary id, `None`
    /// keeps the random init); returns the model and how many rows were set.
    pub fn with_word_vectors(self, rows: &[Option<Vec<f32>>]) -> (Self, usize) {
        let (decoder, found) = match self.decoder {
            Decoder::Rnn(d) => {
                let (d, found) = d.with_word_vectors(rows);
                (Decoder::Rnn(d), found)
            }
            Decoder::Attention(d) => {
                let (embedding, found) = crate::glove::apply(d.embedding, rows);
                (
                    Decoder::Attention(AttentionDecoder { embedding, ..d }),
                    found,
                )
            }
            Decoder::Transformer(d) => {
                let (d, found) = d.with_word_vectors(rows);
                (Decoder::Transformer(d), found)
            }
        };
        (Self { decoder, ..self }, found)
    }

    /// Embedding size of the decoder.
    pub fn embed_dim(&self) -> usize {
        match &self.decoder {
            Decoder::Rnn(d) => d.embed_dim(),
            Decoder::Attention(d) => d.embedding.weight.dims()[1],
            Decoder::Transformer(d) => d.d_model(),
        }
    }

    /// Replaces the decoder, e.g. with one that loaded PyTorch weights.
    pub fn with_decoder(self, decoder: Decoder<B>) -> Self {
        Self { decoder, ..self }
    }

    /// Replaces the encoder, e.g. with one that loaded pretrained weights.
    pub fn with_encoder(self, encoder: Encoder<B>) -> Self {
        Self { encoder, ..self }
    }
}

/// Features as a grid `[N, L, D]`: a pooled vector `[N, F]` is a grid of one location.
fn grid_of<B: Backend>(features: Features<B>) -> Tensor<B, 3> {
    match features {
        Features::Grid(x) => x,
        Features::Pooled(x) => x.unsqueeze_dim::<3>(1),
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;

    type B = Autodiff<NdArray>;

    /// A captioner spec of `arch` (random weights) and `decoder`.
    fn model_spec(arch: Arch, trainable: Trainable, decoder: DecoderChoice) -> ModelSpec {
        ModelSpec {
            encoder: EncoderSpec {
                arch,
                weights: None,
                trainable,
                finetune_after: None,
                finetune_lr: 1e-4,
                transform_input: None,
            },
            decoder,
            word_vectors: None,
        }
    }

    fn gradients_reach(trainable: Trainable) -> (bool, bool) {
        let device = Default::default();
        let spec = model_spec(Arch::ResnetTiny, trainable, DecoderChoice::default());
        let model = spec.init::<B>(7, &device);
        let images = Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let Features::Pooled(f) = model.features(images) else {
            panic!("an RNN decoder takes pooled features");
        };
        let grads = f.sum().backward();
        let Encoder::ResNet(r) = &model.encoder else {
            panic!("resnet_tiny is a ResNet");
        };
        let stem = r.conv1.weight.val().grad(&grads).is_some();
        let last = match &r.layer4[0] {
            crate::encoder::resnet::ResidualBlock::Basic(b) => b.conv1.weight.val().grad(&grads),
            crate::encoder::resnet::ResidualBlock::Bottleneck(b) => {
                b.conv1.weight.val().grad(&grads)
            }
        }
        .is_some();
        (stem, last)
    }

    #[test]
    fn split_decoding_gives_the_same_captions() {
        use crate::attention::AttentionDecoderConfig;
        use crate::search::LengthPenalty;
        type F = burn::backend::Flex;
        let device = Default::default();
        let searches = [
            SearchSpec::Greedy { max_len: 12 },
            SearchSpec::Beam {
                beam_size: 3,
                max_len: 12,
                min_len: 2,
                length_penalty: LengthPenalty::Wu,
                alpha: 0.7,
                no_repeat_ngram_size: 2,
                suppress_unk: true,
            },
        ];
        let decoders = [
            DecoderChoice::default(),
            DecoderChoice::Attention(AttentionDecoderConfig::default()),
            DecoderChoice::Transformer(TransformerSpec {
                num_layers: 2,
                d_model: 16,
                num_heads: 4,
                d_ff: 32,
                dropout: 0.0,
                ..TransformerSpec::default()
            }),
        ];
        for decoder in decoders {
            let spec = model_spec(Arch::ResnetTiny, Trainable::All, decoder);
            let model = spec.init::<F>(30, &device);
            let images = Tensor::<F, 4>::random([37, 3, 32, 32], Distribution::Default, &device);
            let features = model.features(images);
            for search in &searches {
                let whole = model.caption(features.clone(), search, 1, 2, Some(3), 1);
                assert_eq!(whole.len(), 37);
                // Images decode differently, so a share put back in the wrong place would show.
                assert!(whole.windows(2).any(|w| w[0] != w[1]), "{search:?}");
                for threads in [2, 3, 8] {
                    let split = model.caption(features.clone(), search, 1, 2, Some(3), threads);
                    // Same words and bit-identical log-probabilities.
                    assert_eq!(split, whole, "{search:?}, {threads} threads");
                }
            }
        }
    }

    /// fc6/fc7 are built for the RNN decoder only: attention and transformer decoders get a
    /// grid-only VGG, whose features (every training mode) come from the grid alone.
    #[test]
    fn vgg_builds_fc6_fc7_only_for_the_rnn_decoder() {
        type F = NdArray;
        let device = Default::default();
        let transformer = TransformerSpec {
            num_layers: 1,
            d_model: 16,
            num_heads: 4,
            d_ff: 32,
            dropout: 0.0,
            ..TransformerSpec::default()
        };
        let decoders = [
            (DecoderChoice::default(), true),
            (
                DecoderChoice::Attention(AttentionDecoderConfig::default()),
                false,
            ),
            (DecoderChoice::Transformer(transformer), false),
        ];
        for (decoder, pooled) in decoders {
            let section = decoder.section();
            let spec = model_spec(Arch::Vgg11, Trainable::All, decoder);
            assert_eq!(spec.encoder_config().pooled_layers, pooled, "{section}");
            // The spec section alone still describes the whole encoder (`caplab features`).
            assert!(spec.encoder.encoder_config().pooled_layers);
            let model = spec.init::<F>(11, &device);
            let Encoder::Vgg(vgg) = &model.encoder else {
                panic!("vgg11 is a VGG");
            };
            assert_eq!(
                vgg.classifier.len(),
                if pooled { 5 } else { 0 },
                "{section}"
            );
            assert_eq!(model.encoder.has_pooled(), pooled, "{section}");
            if pooled {
                continue;
            }
            let images = Tensor::<F, 4>::random([1, 3, 32, 32], Distribution::Default, &device);
            for trainable in [Trainable::All, Trainable::LastBlock, Trainable::Frozen] {
                let Features::Grid(grid) = model.features_with(images.clone(), trainable) else {
                    panic!("{section} reads the grid");
                };
                assert_eq!(grid.dims(), [1, 4, 512], "{section} {trainable:?}");
            }
        }
    }

    #[test]
    fn last_block_trains_only_the_last_block() {
        assert_eq!(gradients_reach(Trainable::All), (true, true));
        assert_eq!(gradients_reach(Trainable::LastBlock), (false, true));
    }
}
