//! `TransformerDecoderLayer`: causal self-attention, cross-attention over the encoder memory and a
//! ReLU feed-forward block, each with a residual connection and a layer norm, as
//! `torch.nn.TransformerDecoderLayer` (same parameter names, ReLU, `layer_norm_eps = 1e-5`).
//!
//! Post-norm (`norm_first = false`, PyTorch's default and the original paper):
//! `x = norm1(x + sa(x))`, `x = norm2(x + ca(x, m))`, `x = norm3(x + ff(x))`.
//! Pre-norm: `x = x + sa(norm1(x))`, `x = x + ca(norm2(x), m)`, `x = x + ff(norm3(x))`.
//! `ff(x) = linear2(dropout(relu(linear1(x))))`; each residual branch ends in its own dropout.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::attention::{KvCache, MultiHeadAttention, MultiHeadAttentionConfig};

/// Configuration of a [`TransformerDecoderLayer`].
#[derive(Config, Debug)]
pub struct TransformerDecoderLayerConfig {
    /// Model width.
    pub d_model: usize,
    /// Number of attention heads (divides `d_model`).
    pub num_heads: usize,
    /// Hidden width of the feed-forward block.
    pub d_ff: usize,
    /// Dropout of the attention weights, the feed-forward hidden layer and each residual branch.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Layer norm before each block (pre-norm) instead of after the residual sum.
    #[config(default = false)]
    pub norm_first: bool,
}

impl TransformerDecoderLayerConfig {
    /// Builds the layer (attention as PyTorch initialises it, burn's default `Linear`s).
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerDecoderLayer<B> {
        let attention =
            MultiHeadAttentionConfig::new(self.d_model, self.num_heads).with_dropout(self.dropout);
        let norm = || LayerNormConfig::new(self.d_model).init(device);
        let dropout = || DropoutConfig::new(self.dropout).init();
        TransformerDecoderLayer {
            self_attn: attention.init(device),
            multihead_attn: attention.init(device),
            linear1: LinearConfig::new(self.d_model, self.d_ff).init(device),
            linear2: LinearConfig::new(self.d_ff, self.d_model).init(device),
            norm1: norm(),
            norm2: norm(),
            norm3: norm(),
            dropout: dropout(),
            dropout1: dropout(),
            dropout2: dropout(),
            dropout3: dropout(),
            norm_first: self.norm_first,
        }
    }
}

/// One decoder layer, with `torch.nn.TransformerDecoderLayer`'s module names.
#[derive(Module, Debug)]
pub struct TransformerDecoderLayer<B: Backend> {
    /// Causal self-attention over the caption so far.
    pub self_attn: MultiHeadAttention<B>,
    /// Cross-attention over the encoder memory.
    pub multihead_attn: MultiHeadAttention<B>,
    /// Feed-forward `d_model → d_ff`.
    pub linear1: Linear<B>,
    /// Feed-forward `d_ff → d_model`.
    pub linear2: Linear<B>,
    /// Norm of the self-attention block.
    pub norm1: LayerNorm<B>,
    /// Norm of the cross-attention block.
    pub norm2: LayerNorm<B>,
    /// Norm of the feed-forward block.
    pub norm3: LayerNorm<B>,
    /// Dropout after the feed-forward activation.
    pub dropout: Dropout,
    /// Dropout of the self-attention branch.
    pub dropout1: Dropout,
    /// Dropout of the cross-attention branch.
    pub dropout2: Dropout,
    /// Dropout of the feed-forward branch.
    pub dropout3: Dropout,
    /// Pre-norm (true) or post-norm.
    #[module(skip)]
    pub norm_first: bool,
}

/// What a layer returns besides its output: the cross-attention weights `[N, heads, T, S]`.
pub type CrossWeights<B> = Tensor<B, 4>;

impl<B: Backend> TransformerDecoderLayer<B> {
    /// Teacher-forced pass of `x` `[N, T, d]` over the memory's keys and values: `[N, T, d]`
    /// and the cross-attention weights `[N, heads, T, S]`.
    pub fn forward(&self, x: Tensor<B, 3>, memory: &KvCache<B>) -> (Tensor<B, 3>, CrossWeights<B>) {
        self.run(x, memory, |attn, x| (attn.causal(x).0, None))
            .map_cache()
    }

    /// Incremental pass of new positions `x` `[N, T', d]` after the `past` self-attention keys
    /// and values: `[N, T', d]`, the cross-attention weights and the extended cache.
    pub fn step(
        &self,
        x: Tensor<B, 3>,
        memory: &KvCache<B>,
        past: Option<KvCache<B>>,
    ) -> (Tensor<B, 3>, CrossWeights<B>, KvCache<B>) {
        let out = self.run(x, memory, |attn, x| {
            let (y, cache) = attn.causal_step(x, past);
            (y, Some(cache))
        });
        let cache = out.cache.expect("the step keeps its keys and values");
        (out.x, out.weights, cache)
    }

    /// The three blocks, with `self_attention` computing the first block's attention.
    fn run(
        &self,
        x: Tensor<B, 3>,
        memory: &KvCache<B>,
        self_attention: impl FnOnce(
            &MultiHeadAttention<B>,
            Tensor<B, 3>,
        ) -> (Tensor<B, 3>, Option<KvCache<B>>),
    ) -> LayerOut<B> {
        let feed_forward = |x: Tensor<B, 3>| {
            self.linear2
                .forward(self.dropout.forward(relu(self.linear1.forward(x))))
        };
        if self.norm_first {
            let (sa, cache) = self_attention(&self.self_attn, self.norm1.forward(x.clone()));
            let x = x + self.dropout1.forward(sa);
            let (ca, weights) =
                self.multihead_attn
                    .attend(self.norm2.forward(x.clone()), memory, None);
            let x = x + self.dropout2.forward(ca);
            let x = x.clone() + self.dropout3.forward(feed_forward(self.norm3.forward(x)));
            LayerOut { x, weights, cache }
        } else {
            let (sa, cache) = self_attention(&self.self_attn, x.clone());
            let x = self.norm1.forward(x + self.dropout1.forward(sa));
            let (ca, weights) = self.multihead_attn.attend(x.clone(), memory, None);
            let x = self.norm2.forward(x + self.dropout2.forward(ca));
            let x = self
                .norm3
                .forward(x.clone() + self.dropout3.forward(feed_forward(x)));
            LayerOut { x, weights, cache }
        }
    }
}

/// A layer's output, its cross-attention weights and (incremental pass) its self-attention cache.
struct LayerOut<B: Backend> {
    x: Tensor<B, 3>,
    weights: Tensor<B, 4>,
    cache: Option<KvCache<B>>,
}

impl<B: Backend> LayerOut<B> {
    fn map_cache(self) -> (Tensor<B, 3>, Tensor<B, 4>) {
        (self.x, self.weights)
    }
}
