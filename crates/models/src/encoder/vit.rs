//! Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"), torchvision layout.
//!
//! Field names follow torchvision's `VisionTransformer` (`conv_proj`, `class_token`,
//! `encoder.pos_embedding`, `encoder.layers.encoder_layer_N.{ln_1,self_attention,ln_2,mlp}`,
//! `encoder.ln`); the classifier `heads` is not built. Burn keeps the blocks in a `Vec`, so
//! `encoder_layer_N` is `layers.N` here, and torchvision's `mlp.0`/`mlp.3` (an `nn.Sequential`)
//! are `mlp.linear_1`/`mlp.linear_2` ([`super::weights::torchvision_to_burn_key`]).
//!
//! The encoder's output after `encoder.ln` gives both features: the class token is the global
//! feature `[B, D]`, the patch tokens laid back on their `h × w` grid (row-major, as
//! `conv_proj` produced them) are the spatial grid `[B, D, h, w]`.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;

use super::backbone::Backbone;
use super::multihead_attention::{MultiheadAttention, MultiheadAttentionConfig};

/// LayerNorm epsilon of torchvision's ViT (`partial(nn.LayerNorm, eps=1e-6)`).
const LN_EPS: f64 = 1e-6;

fn layer_norm<B: Backend>(width: usize, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(width)
        .with_epsilon(LN_EPS)
        .init(device)
}

/// Configuration of a [`VisionTransformer`] (torchvision's constructor arguments).
#[derive(Config, Debug)]
pub struct VisionTransformerConfig {
    /// Side of the square input image; a multiple of `patch_size`.
    pub image_size: usize,
    /// Side of a square patch (the stride of `conv_proj`).
    pub patch_size: usize,
    /// Number of encoder blocks.
    pub num_layers: usize,
    /// Attention heads per block.
    pub num_heads: usize,
    /// Token width `D`.
    pub hidden_dim: usize,
    /// Width of the MLP's hidden layer.
    pub mlp_dim: usize,
}

impl VisionTransformerConfig {
    /// torchvision `vit_b_16` at `image_size` (224 for its pretrained weights).
    pub fn vit_b_16(image_size: usize) -> Self {
        Self::new(image_size, 16, 12, 12, 768, 3072)
    }

    /// torchvision `vit_b_32` at `image_size` (224 for its pretrained weights).
    pub fn vit_b_32(image_size: usize) -> Self {
        Self::new(image_size, 32, 12, 12, 768, 3072)
    }

    /// torchvision `vit_l_16` at `image_size` (224 for its pretrained weights).
    pub fn vit_l_16(image_size: usize) -> Self {
        Self::new(image_size, 16, 24, 16, 1024, 4096)
    }

    /// caplab's own `vit_tiny` at `image_size` (64 for CPU training; no pretrained weights):
    /// patch 8, 4 blocks, 4 heads, width 128, MLP 256, 0.56 M parameters. At 64 px its
    /// patch tokens form an 8×8 grid.
    pub fn vit_tiny(image_size: usize) -> Self {
        Self::new(image_size, 8, 4, 4, 128, 256)
    }

    /// Side of the patch grid (`image_size / patch_size`).
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Checks that the image size is a positive multiple of the patch size and the heads divide
    /// the width; the message names the sizes.
    pub fn check(&self) -> Result<(), String> {
        if self.patch_size == 0
            || self.image_size == 0
            || !self.image_size.is_multiple_of(self.patch_size)
        {
            return Err(format!(
                "image size {} is not a multiple of the patch size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_heads == 0 || !self.hidden_dim.is_multiple_of(self.num_heads) {
            return Err(format!(
                "{} heads do not divide the width {}",
                self.num_heads, self.hidden_dim
            ));
        }
        Ok(())
    }

    /// Builds the network initialised about as torchvision does (`conv_proj` normal with std
    /// √(1/fan_in), zero class token, positional embedding normal with std 0.02,
    /// Xavier-uniform MLP weights).
    ///
    /// # Panics
    ///
    /// When [`VisionTransformerConfig::check`] fails; callers check first.
    pub fn init<B: Backend>(&self, device: &B::Device) -> VisionTransformer<B> {
        if let Err(message) = self.check() {
            panic!("{message}");
        }
        let d = self.hidden_dim;
        let fan_in = 3 * self.patch_size * self.patch_size;
        let conv_proj = Conv2dConfig::new([3, d], [self.patch_size, self.patch_size])
            .with_stride([self.patch_size, self.patch_size])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: (1.0 / fan_in as f64).sqrt(),
            })
            .init(device);
        let seq_len = self.grid_size() * self.grid_size() + 1;
        let layers = (0..self.num_layers)
            .map(|_| EncoderBlock {
                ln_1: layer_norm(d, device),
                self_attention: MultiheadAttentionConfig::new(d, self.num_heads).init(device),
                ln_2: layer_norm(d, device),
                mlp: MlpBlock::new(d, self.mlp_dim, device),
            })
            .collect();
        VisionTransformer {
            conv_proj,
            class_token: Initializer::Zeros.init([1, 1, d], device),
            encoder: Encoder {
                pos_embedding: Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([1, seq_len, d], device),
                layers,
                ln: layer_norm(d, device),
            },
            patch_size: self.patch_size,
        }
    }
}

/// torchvision's `MLPBlock`: `linear_1`, GELU (erf), `linear_2` (dropout is the identity in eval).
#[derive(Module, Debug)]
pub struct MlpBlock<B: Backend> {
    /// torchvision `mlp.0`: `D → mlp_dim`.
    pub linear_1: Linear<B>,
    /// torchvision `mlp.3`: `mlp_dim → D`.
    pub linear_2: Linear<B>,
}

impl<B: Backend> MlpBlock<B> {
    fn new(d: usize, mlp_dim: usize, device: &B::Device) -> Self {
        let linear = |from: usize, to: usize| {
            LinearConfig::new(from, to)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        Self {
            linear_1: linear(d, mlp_dim),
            linear_2: linear(mlp_dim, d),
        }
    }

    /// `[B, L, D]` → `[B, L, D]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.linear_2.forward(gelu(self.linear_1.forward(x)))
    }
}

/// torchvision's `EncoderBlock`: pre-norm self-attention and MLP, each with a residual.
#[derive(Module, Debug)]
pub struct EncoderBlock<B: Backend> {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm<B>,
    /// Multi-head self-attention.
    pub self_attention: MultiheadAttention<B>,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm<B>,
    /// The MLP.
    pub mlp: MlpBlock<B>,
}

impl<B: Backend> EncoderBlock<B> {
    /// `x + attn(ln_1(x))`, then `y + mlp(ln_2(y))`; `[B, L, D]` → `[B, L, D]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = x.clone() + self.self_attention.forward(self.ln_1.forward(x));
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

/// torchvision's `Encoder`: positional embedding, the blocks, a final LayerNorm.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// Learned positional embedding `[1, 1 + h·w, D]` (class token first).
    pub pos_embedding: Param<Tensor<B, 3>>,
    /// The blocks (torchvision `layers.encoder_layer_N`).
    pub layers: Vec<EncoderBlock<B>>,
    /// Final LayerNorm.
    pub ln: LayerNorm<B>,
}

impl<B: Backend> Encoder<B> {
    /// Tokens `[B, 1 + h·w, D]` (a square grid) through the blocks, `cut` applied to the last
    /// block's input.
    pub fn forward_cut(
        &self,
        tokens: Tensor<B, 3>,
        cut: &dyn Fn(Tensor<B, 3>) -> Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let x = tokens.clone() + positions(self.pos_embedding.val(), tokens.dims()[1]);
        let last = self.layers.len().saturating_sub(1);
        let x = self.layers[..last]
            .iter()
            .fold(x, |x, block| block.forward(x));
        let x = self.layers[last..]
            .iter()
            .fold(cut(x), |x, block| block.forward(x));
        self.ln.forward(x)
    }
}

/// torchvision's `VisionTransformer` without the classifier `heads`.
#[derive(Module, Debug)]
pub struct VisionTransformer<B: Backend> {
    /// Patch embedding: a `patch × patch` convolution with stride `patch`, `3 → D`.
    pub conv_proj: Conv2d<B>,
    /// Class token `[1, 1, D]`.
    pub class_token: Param<Tensor<B, 3>>,
    /// Positional embedding, blocks and final LayerNorm.
    pub encoder: Encoder<B>,
    /// Side of a patch.
    pub patch_size: usize,
}

impl<B: Backend> VisionTransformer<B> {
    /// Token width `D`.
    pub fn hidden_dim(&self) -> usize {
        self.class_token.dims()[2]
    }

    /// The encoder's output `[B, 1 + h·w, D]` (after `encoder.ln`), `cut` before the last block.
    ///
    /// # Panics
    ///
    /// When the image is not square or its side is not a multiple of the patch size.
    pub fn forward_tokens_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 3>) -> Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let patches = patch_tokens(&self.conv_proj, self.patch_size, images);
        let [batch, _, d] = patches.dims();
        let class = self.class_token.val().expand([batch, 1, d]);
        self.encoder
            .forward_cut(Tensor::cat(vec![class, patches], 1), cut)
    }
}

/// Patch embedding of square images `[B, 3, S, S]` as tokens `[B, g·g, D]`, `g = S / patch`
/// (row-major over the grid).
///
/// # Panics
///
/// When the image is not square or `S` is not a multiple of `patch`.
pub(super) fn patch_tokens<B: Backend>(
    conv: &Conv2d<B>,
    patch: usize,
    images: Tensor<B, 4>,
) -> Tensor<B, 3> {
    let [_, _, height, width] = images.dims();
    assert!(
        height == width && height.is_multiple_of(patch),
        "image size {height}x{width} is not a square whose side is a multiple of the patch size {patch}"
    );
    // [B, D, h, w] -> [B, D, h·w] -> [B, h·w, D]
    conv.forward(images).flatten::<3>(2, 3).swap_dims(1, 2)
}

/// A positional embedding `[1, 1 + g·g, D]` (class position first) for `len = 1 + n·n`
/// tokens: unchanged when `n = g`, otherwise its patch positions resampled from `g × g` to
/// `n × n` by bicubic interpolation with aligned corners, as torchvision's
/// `interpolate_embeddings` does for fine-tuning at another resolution.
pub(super) fn positions<B: Backend>(pos: Tensor<B, 3>, len: usize) -> Tensor<B, 3> {
    let [_, stored, d] = pos.dims();
    if stored == len {
        return pos;
    }
    let side = |n: usize| (n as f64).sqrt().round() as usize;
    let (g, n) = (side(stored - 1), side(len - 1));
    let class = pos.clone().narrow(1, 0, 1);
    // [1, g·g, D] -> [1, D, g, g] -> [1, D, n, n] -> [1, n·n, D]
    let grid = pos
        .narrow(1, 1, stored - 1)
        .swap_dims(1, 2)
        .reshape([1, d, g, g]);
    let resized = burn::tensor::module::interpolate(
        grid,
        [n, n],
        InterpolateOptions::new(InterpolateMode::Bicubic).with_align_corners(true),
    );
    let patches = resized.reshape([1, d, n * n]).swap_dims(1, 2);
    Tensor::cat(vec![class, patches], 1)
}

/// Patch tokens `[B, 1 + h·w, D]` (class token first) back on their grid `[B, D, h, w]`.
pub(super) fn tokens_to_grid<B: Backend>(
    tokens: Tensor<B, 3>,
    height: usize,
    width: usize,
) -> Tensor<B, 4> {
    let [batch, len, d] = tokens.dims();
    tokens
        .narrow(1, 1, len - 1)
        .swap_dims(1, 2)
        .reshape([batch, d, height, width])
}

impl<B: Backend> Backbone<B> for VisionTransformer<B> {
    /// Patch tokens after `encoder.ln` on their grid `[B, D, H/patch, W/patch]`, `cut` applied
    /// to the input of the last encoder block.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        self.forward_both_cut(images, cut).1
    }

    /// Class token after `encoder.ln` `[B, D]` and the patch-token grid.
    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        let [_, _, height, width] = images.dims();
        let (h, w) = (height / self.patch_size, width / self.patch_size);
        let tokens = self.forward_tokens_cut(images, &|x| cut_tokens(x, cut));
        let class = tokens.clone().narrow(1, 0, 1).flatten::<2>(1, 2);
        (class, tokens_to_grid(tokens, h, w))
    }
}

/// A grid-shaped `cut` (a detach, in practice) applied to tokens `[B, L, D]`.
pub(super) fn cut_tokens<B: Backend>(
    x: Tensor<B, 3>,
    cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
) -> Tensor<B, 3> {
    let [batch, len, d] = x.dims();
    cut(x.reshape([batch, len, d, 1])).reshape([batch, len, d])
}
