//! Multi-head self-attention laid out as PyTorch's `nn.MultiheadAttention` (Vaswani et al., 2017),
//! as torchvision's ViT and open_clip's vision transformer use it.
//!
//! The query, key and value projections are one packed parameter, `in_proj_weight` `[3·D, D]`
//! with `in_proj_bias` `[3·D]`, stored in PyTorch's layout so the `state_dict` keys map by
//! name; `out_proj` is a [`Linear`]. burn-nn's `MultiHeadAttention` keeps four separate
//! projections, so it cannot take these keys without splitting them.
//!
//! The projections are 2-D matrix products on `[B·L, D]` rows against the weight's transposed
//! view (the CPU backend's gemm reads strides, so nothing is copied); attention is two batched
//! matrix products over `[B, heads, L, D/heads]`, the query scaled by `1/√(D/heads)` first, as
//! PyTorch's scaled dot-product attention does.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Configuration of a [`MultiheadAttention`].
#[derive(Config, Debug)]
pub struct MultiheadAttentionConfig {
    /// Model width `D` (torch's `embed_dim`).
    pub d_model: usize,
    /// Number of heads; must divide `d_model`.
    pub n_heads: usize,
}

impl MultiheadAttentionConfig {
    /// Builds the layer, initialised as PyTorch does: Xavier-uniform packed projection, zero
    /// biases, `out_proj` weight uniform in ±1/√D.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MultiheadAttention<B> {
        assert!(
            self.n_heads > 0 && self.d_model.is_multiple_of(self.n_heads),
            "{} heads do not divide the width {}",
            self.n_heads,
            self.d_model
        );
        let d = self.d_model;
        let in_proj_weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [3 * d, d],
            Some(d),
            Some(3 * d),
            device,
        );
        MultiheadAttention {
            in_proj_weight,
            in_proj_bias: Initializer::Zeros.init([3 * d], device),
            out_proj: LinearConfig::new(d, d).init(device),
            n_heads: self.n_heads,
        }
    }
}

/// Multi-head self-attention with PyTorch's `nn.MultiheadAttention` parameters.
#[derive(Module, Debug)]
pub struct MultiheadAttention<B: Backend> {
    /// Packed query/key/value projection `[3·D, D]` (PyTorch layout: rows are outputs).
    pub in_proj_weight: Param<Tensor<B, 2>>,
    /// Packed query/key/value bias `[3·D]`.
    pub in_proj_bias: Param<Tensor<B, 1>>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// Number of heads.
    pub n_heads: usize,
}

impl<B: Backend> MultiheadAttention<B> {
    /// Self-attention of `x` `[B, L, D]` → `[B, L, D]` (no mask, no dropout).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, len, d] = x.dims();
        let heads = self.n_heads;
        let head_dim = d / heads;
        let rows = x.reshape([batch * len, d]);
        // [B·L, 3·D] = x · Wᵀ + b, on the transposed view of the packed weight.
        let qkv = rows.matmul(self.in_proj_weight.val().transpose())
            + self.in_proj_bias.val().unsqueeze_dim::<2>(0);
        // [B·L, 3·D] -> [3, B, heads, L, head_dim]
        let qkv = qkv
            .reshape([batch, len, 3, heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| {
            qkv.clone()
                .narrow(0, i, 1)
                .reshape([batch, heads, len, head_dim])
        };
        let scale = 1.0 / (head_dim as f64).sqrt();
        let (q, k, v) = (part(0).mul_scalar(scale), part(1), part(2));
        let weights = softmax(q.matmul(k.swap_dims(2, 3)), 3);
        // [B, heads, L, head_dim] -> [B·L, D]
        let context = weights.matmul(v).swap_dims(1, 2).reshape([batch * len, d]);
        self.out_proj.forward(context).reshape([batch, len, d])
    }
}
