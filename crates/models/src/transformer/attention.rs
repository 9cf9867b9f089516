//! `MultiHeadAttention`: scaled dot-product attention over `num_heads` heads, with the parameter
//! layout of `torch.nn.MultiheadAttention` (one packed `in_proj` for query, key and value, then
//! `out_proj`), and a key/value cache for incremental decoding.
//!
//! `q, k, v = x_q·W_q + b_q, x_kv·W_k + b_k, x_kv·W_v + b_v` (the three column blocks of
//! `in_proj_weight`), split into heads of `d_head = d_model / num_heads`;
//! `weights = softmax(q·kᵀ / √d_head)` (masked positions −∞), `out = out_proj(weights·v)`.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

/// Configuration of a [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Model width `d_model` (query, key, value and output size).
    pub d_model: usize,
    /// Number of heads; must divide `d_model`.
    pub num_heads: usize,
    /// Dropout on the attention weights (training only).
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl MultiHeadAttentionConfig {
    /// Builds the attention with PyTorch's initialisation: Xavier-uniform `in_proj_weight`,
    /// zero `in_proj_bias` and `out_proj.bias`.
    ///
    /// Panics when `num_heads` does not divide `d_model` (specs check it first, naming the key).
    pub fn init<B: Backend>(&self, device: &B::Device) -> MultiHeadAttention<B> {
        let d = self.d_model;
        assert!(
            self.num_heads >= 1 && d.is_multiple_of(self.num_heads),
            "num_heads ({}) must divide d_model ({d})",
            self.num_heads
        );
        // PyTorch draws the packed [3d, d] matrix with fan_in = d, fan_out = 3d; stored here
        // transposed as [d, 3d] (burn's [in, out] layout).
        let in_proj_weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [d, 3 * d],
            Some(d),
            Some(3 * d),
            device,
        );
        let mut out_proj = LinearConfig::new(d, d).init(device);
        out_proj.bias = Some(Initializer::Zeros.init([d], device));
        MultiHeadAttention {
            in_proj_weight,
            in_proj_bias: Initializer::Zeros.init([3 * d], device),
            out_proj,
            dropout: DropoutConfig::new(self.dropout).init(),
            num_heads: self.num_heads,
        }
    }
}

/// Multi-head attention with `torch.nn.MultiheadAttention`'s parameters.
#[derive(Module, Debug)]
pub struct MultiHeadAttention<B: Backend> {
    /// Packed query/key/value projection `[d_model, 3·d_model]` (PyTorch's `[3·d, d]`, transposed).
    pub in_proj_weight: Param<Tensor<B, 2>>,
    /// Packed query/key/value bias `[3·d_model]`.
    pub in_proj_bias: Param<Tensor<B, 1>>,
    /// Output projection `d_model → d_model`.
    pub out_proj: Linear<B>,
    /// Dropout on the attention weights.
    pub dropout: Dropout,
    /// Number of heads.
    #[module(skip)]
    pub num_heads: usize,
}

/// Keys and values of the attended positions, split into heads: `k`, `v` `[N, heads, S, d_head]`.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    /// Keys `[N, heads, S, d_head]`.
    pub k: Tensor<B, 4>,
    /// Values `[N, heads, S, d_head]`.
    pub v: Tensor<B, 4>,
}

impl<B: Backend> KvCache<B> {
    /// Keeps (or repeats) the batch rows `indices`, as beam search reorders its beams.
    pub fn select(self, indices: Tensor<B, 1, Int>) -> Self {
        Self {
            k: self.k.select(0, indices.clone()),
            v: self.v.select(0, indices),
        }
    }

    /// Number of cached positions `S`.
    pub fn len(&self) -> usize {
        self.k.dims()[2]
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache with `next`'s positions appended (`[N, heads, S + S', d_head]`).
    pub fn append(self, next: KvCache<B>) -> Self {
        Self {
            k: Tensor::cat(vec![self.k, next.k], 2),
            v: Tensor::cat(vec![self.v, next.v], 2),
        }
    }
}

impl<B: Backend> MultiHeadAttention<B> {
    /// Model width `d_model`.
    pub fn d_model(&self) -> usize {
        self.in_proj_weight.dims()[0]
    }

    /// Block `part` (0 query, 1 key, 2 value) of the packed projection applied to `x`
    /// `[N, S, d]` → `[N, heads, S, d_head]`.
    fn project(&self, x: Tensor<B, 3>, part: usize) -> Tensor<B, 4> {
        let d = self.d_model();
        let [n, s, _] = x.dims();
        let w = self.in_proj_weight.val().narrow(1, part * d, d);
        let b = self.in_proj_bias.val().narrow(0, part * d, d);
        let h = self.num_heads;
        (x.matmul(w.unsqueeze_dim::<3>(0)) + b.unsqueeze_dims::<3>(&[0, 1]))
            .reshape([n, s, h, d / h])
            .swap_dims(1, 2)
    }

    /// Keys and values of `x` `[N, S, d]` (the encoder memory, or new decoder positions).
    pub fn keys_values(&self, x: Tensor<B, 3>) -> KvCache<B> {
        KvCache {
            k: self.project(x.clone(), 1),
            v: self.project(x, 2),
        }
    }

    /// Attention of queries `x` `[N, T, d]` over cached keys and values `[N, heads, S, d_head]`;
    /// `mask` `[T, S]` is true where a query may not look. Returns the output `[N, T, d]` and
    /// the attention weights `[N, heads, T, S]` (before dropout).
    pub fn attend(
        &self,
        x: Tensor<B, 3>,
        kv: &KvCache<B>,
        mask: Option<Tensor<B, 2, Bool>>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let [n, t, d] = x.dims();
        let h = self.num_heads;
        let d_head = d / h;
        let q = self.project(x, 0);
        let scores = q
            .matmul(kv.k.clone().swap_dims(2, 3))
            .div_scalar((d_head as f64).sqrt());
        let scores = match mask {
            Some(mask) => {
                let s = kv.len();
                scores.mask_fill(
                    mask.unsqueeze_dims::<4>(&[0, 1]).expand([n, h, t, s]),
                    f32::NEG_INFINITY,
                )
            }
            None => scores,
        };
        let weights = softmax(scores, 3);
        let context = self
            .dropout
            .forward(weights.clone())
            .matmul(kv.v.clone())
            .swap_dims(1, 2)
            .reshape([n, t, d]);
        (self.out_proj.forward(context), weights)
    }

    /// Causal self-attention over `x` `[N, T, d]` (position `i` sees `0..=i`): output `[N, T, d]`
    /// and weights `[N, heads, T, T]`.
    pub fn causal(&self, x: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let [_, t, _] = x.dims();
        let kv = self.keys_values(x.clone());
        let mask = Tensor::<B, 2, Bool>::tril_mask([t, t], 0, &x.device());
        self.attend(x, &kv, Some(mask))
    }

    /// One incremental self-attention step: the new positions `x` `[N, T', d]` (usually T' = 1)
    /// attend over the `past` positions and themselves (causally among themselves). Returns the
    /// output `[N, T', d]` and the cache with the new keys and values appended.
    pub fn causal_step(
        &self,
        x: Tensor<B, 3>,
        past: Option<KvCache<B>>,
    ) -> (Tensor<B, 3>, KvCache<B>) {
        let [_, t, _] = x.dims();
        let fresh = self.keys_values(x.clone());
        let kv = match past {
            Some(past) => past.append(fresh),
            None => fresh,
        };
        let s = kv.len();
        let mask =
            (t > 1).then(|| Tensor::<B, 2, Bool>::tril_mask([t, s], (s - t) as i64, &x.device()));
        let (out, _) = self.attend(x, &kv, mask);
        (out, kv)
    }
}
