//! `TransformerDecoder`: a stack of [`TransformerDecoderLayer`]s and, for pre-norm stacks, a final
//! layer norm, as `torch.nn.TransformerDecoder(layer, num_layers, norm)` (keys `layers.{i}.…`
//! and `norm.…`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::attention::KvCache;
use super::layer::{TransformerDecoderLayer, TransformerDecoderLayerConfig};

/// Configuration of a [`TransformerDecoder`].
#[derive(Config, Debug)]
pub struct TransformerDecoderConfig {
    /// The configuration every layer shares.
    pub layer: TransformerDecoderLayerConfig,
    /// Number of layers.
    pub num_layers: usize,
}

impl TransformerDecoderConfig {
    /// Builds the stack; pre-norm layers get a final layer norm (the usual pre-norm setup, and
    /// `nn.TransformerDecoder(..., norm=nn.LayerNorm(d_model))` in PyTorch).
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerDecoder<B> {
        TransformerDecoder {
            layers: (0..self.num_layers)
                .map(|_| self.layer.init(device))
                .collect(),
            norm: self
                .layer
                .norm_first
                .then(|| LayerNormConfig::new(self.layer.d_model).init(device)),
        }
    }
}

/// Stacked decoder layers, with `torch.nn.TransformerDecoder`'s module names.
#[derive(Module, Debug)]
pub struct TransformerDecoder<B: Backend> {
    /// The layers, first to last.
    pub layers: Vec<TransformerDecoderLayer<B>>,
    /// Final layer norm (pre-norm stacks only).
    pub norm: Option<LayerNorm<B>>,
}

impl<B: Backend> TransformerDecoder<B> {
    /// Each layer's cross-attention keys and values of the memory `[N, S, d]`; computed once
    /// per caption.
    pub fn memory(&self, memory: Tensor<B, 3>) -> Vec<KvCache<B>> {
        self.layers
            .iter()
            .map(|layer| layer.multihead_attn.keys_values(memory.clone()))
            .collect()
    }

    /// Teacher-forced pass of `x` `[N, T, d]` over the [`memory`](Self::memory) keys and
    /// values: `[N, T, d]` and the last layer's cross-attention weights `[N, heads, T, S]`.
    pub fn forward(&self, x: Tensor<B, 3>, memory: &[KvCache<B>]) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let mut x = x;
        let mut weights = None;
        for (layer, kv) in self.layers.iter().zip(memory) {
            let (y, w) = layer.forward(x, kv);
            x = y;
            weights = Some(w);
        }
        (
            self.final_norm(x),
            weights.expect("a decoder has at least one layer"),
        )
    }

    /// Incremental pass of new positions `x` `[N, T', d]` after each layer's `past` self-attention
    /// cache (empty before the first step): `[N, T', d]`, the last layer's cross-attention
    /// weights `[N, heads, T', S]`, and the caches with the new positions appended.
    pub fn step(
        &self,
        x: Tensor<B, 3>,
        memory: &[KvCache<B>],
        past: Vec<KvCache<B>>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>, Vec<KvCache<B>>) {
        let mut past = past.into_iter();
        let mut x = x;
        let mut weights = None;
        let mut caches = Vec::with_capacity(self.layers.len());
        for (layer, kv) in self.layers.iter().zip(memory) {
            let (y, w, cache) = layer.step(x, kv, past.next());
            x = y;
            weights = Some(w);
            caches.push(cache);
        }
        let weights = weights.expect("a decoder has at least one layer");
        (self.final_norm(x), weights, caches)
    }

    fn final_norm(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}
