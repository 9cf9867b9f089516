//! CLIP's image tower (Radford et al., 2021, "Learning Transferable Visual Models From Natural
//! Language Supervision"), as open_clip's `VisionTransformer` defines it.
//!
//! Field names are open_clip's `visual.*` keys without the prefix: `conv1` (no bias),
//! `class_embedding`, `positional_embedding`, `ln_pre`,
//! `transformer.resblocks.N.{ln_1,attn,ln_2,mlp.c_fc,mlp.c_proj}`, `ln_post` and `proj`
//! ([`super::weights::load_open_clip`] reads them, from a whole CLIP `state_dict` or the visual
//! tower's own).
//!
//! Features: the token sequence after `ln_post` gives the global feature, the class token
//! times `proj` (`[B, embed_dim]`, CLIP's image embedding before normalisation), and the
//! spatial grid, the patch tokens after `ln_post` laid back on their `h × w` grid
//! (`[B, width, h, w]`, not projected): what open_clip returns as `tokens` with
//! `output_tokens=True`.
//!
//! The MLP's activation is QuickGELU (`x·σ(1.702·x)`) for OpenAI's weights (open_clip's
//! `*-quickgelu` models and `pretrained='openai'`) and GELU for open_clip's plain configs such
//! as `ViT-B-32` (most LAION weights); [`ClipVisionConfig::quick_gelu`] chooses, and caplab's
//! architecture names follow open_clip's (`clip_vit_b_32_quickgelu`, `clip_vit_b_32`).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::backbone::Backbone;
use super::multihead_attention::{MultiheadAttention, MultiheadAttentionConfig};
use super::vit::{cut_tokens, patch_tokens, positions, tokens_to_grid};

/// LayerNorm epsilon of open_clip (`nn.LayerNorm`'s default).
const LN_EPS: f64 = 1e-5;

fn layer_norm<B: Backend>(width: usize, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(width)
        .with_epsilon(LN_EPS)
        .init(device)
}

/// Configuration of a CLIP [`VisionTransformer`] (open_clip's `CLIPVisionCfg` and `embed_dim`).
#[derive(Config, Debug)]
pub struct ClipVisionConfig {
    /// Side of the square input image; a multiple of `patch_size`.
    pub image_size: usize,
    /// Side of a square patch.
    pub patch_size: usize,
    /// Number of residual attention blocks.
    pub layers: usize,
    /// Token width.
    pub width: usize,
    /// Width of one attention head (heads = `width / head_width`).
    #[config(default = 64)]
    pub head_width: usize,
    /// MLP hidden width as a multiple of `width` (rounded down, as open_clip's `int(width * mlp_ratio)`).
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Output width of `proj` (CLIP's joint embedding size).
    pub embed_dim: usize,
    /// QuickGELU (OpenAI's weights) instead of GELU (open_clip's plain configs).
    #[config(default = true)]
    pub quick_gelu: bool,
}

impl ClipVisionConfig {
    /// open_clip `ViT-B-32`'s image tower at `image_size` (224 for its pretrained weights).
    pub fn vit_b_32(image_size: usize) -> Self {
        Self::new(image_size, 32, 12, 768, 512)
    }

    /// open_clip `ViT-B-16`'s image tower at `image_size` (224 for its pretrained weights).
    pub fn vit_b_16(image_size: usize) -> Self {
        Self::new(image_size, 16, 12, 768, 512)
    }

    /// Side of the patch grid (`image_size / patch_size`).
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Checks that the image size is a positive multiple of the patch size and the head width
    /// divides the width; the message names the sizes.
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
        if self.head_width == 0 || !self.width.is_multiple_of(self.head_width) {
            return Err(format!(
                "head width {} does not divide the width {}",
                self.head_width, self.width
            ));
        }
        Ok(())
    }

    /// Builds the tower initialised as open_clip does (class and positional embeddings and
    /// `proj` normal with std `width^-½`).
    ///
    /// # Panics
    ///
    /// When [`ClipVisionConfig::check`] fails; callers check first.
    pub fn init<B: Backend>(&self, device: &B::Device) -> VisionTransformer<B> {
        if let Err(message) = self.check() {
            panic!("{message}");
        }
        let width = self.width;
        let scale = (width as f64).powf(-0.5);
        let normal = Initializer::Normal {
            mean: 0.0,
            std: scale,
        };
        let seq_len = self.grid_size() * self.grid_size() + 1;
        let heads = width / self.head_width;
        let hidden = (width as f64 * self.mlp_ratio) as usize;
        let resblocks = (0..self.layers)
            .map(|_| ResidualAttentionBlock {
                ln_1: layer_norm(width, device),
                attn: MultiheadAttentionConfig::new(width, heads).init(device),
                ln_2: layer_norm(width, device),
                mlp: Mlp {
                    c_fc: LinearConfig::new(width, hidden).init(device),
                    c_proj: LinearConfig::new(hidden, width).init(device),
                    quick_gelu: self.quick_gelu,
                },
            })
            .collect();
        VisionTransformer {
            conv1: Conv2dConfig::new([3, width], [self.patch_size, self.patch_size])
                .with_stride([self.patch_size, self.patch_size])
                .with_bias(false)
                .init(device),
            class_embedding: normal.init([width], device),
            positional_embedding: normal.init([seq_len, width], device),
            ln_pre: layer_norm(width, device),
            transformer: Transformer { resblocks },
            ln_post: layer_norm(width, device),
            proj: normal.init([width, self.embed_dim], device),
            patch_size: self.patch_size,
        }
    }
}

/// open_clip's MLP: `c_fc`, QuickGELU or GELU, `c_proj`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `width → mlp_ratio·width`.
    pub c_fc: Linear<B>,
    /// `mlp_ratio·width → width`.
    pub c_proj: Linear<B>,
    /// QuickGELU instead of GELU.
    pub quick_gelu: bool,
}

impl<B: Backend> Mlp<B> {
    /// `[B, L, width]` → `[B, L, width]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.c_fc.forward(x);
        let x = if self.quick_gelu {
            // x·σ(1.702x) written as x / (1 + e^(−1.702x)): with burn's `sigmoid` the float64
            // whole-network parity was 2e-8 relative from torch; this form gives 1.4e-15.
            x.clone() / x.mul_scalar(-1.702).exp().add_scalar(1.0)
        } else {
            gelu(x)
        };
        self.c_proj.forward(x)
    }
}

/// open_clip's `ResidualAttentionBlock` (no LayerScale, as the CLIP ViT-B configs).
#[derive(Module, Debug)]
pub struct ResidualAttentionBlock<B: Backend> {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm<B>,
    /// Multi-head self-attention (`nn.MultiheadAttention` keys).
    pub attn: MultiheadAttention<B>,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm<B>,
    /// The MLP.
    pub mlp: Mlp<B>,
}

impl<B: Backend> ResidualAttentionBlock<B> {
    /// `x + attn(ln_1(x))`, then `y + mlp(ln_2(y))`; `[B, L, width]` → `[B, L, width]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x));
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

/// open_clip's `Transformer`: the residual attention blocks.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    /// The blocks.
    pub resblocks: Vec<ResidualAttentionBlock<B>>,
}

/// open_clip's `VisionTransformer` (CLIP's image tower), pooling by the class token.
#[derive(Module, Debug)]
pub struct VisionTransformer<B: Backend> {
    /// Patch embedding, `patch × patch` with stride `patch`, no bias.
    pub conv1: Conv2d<B>,
    /// Class embedding `[width]`.
    pub class_embedding: Param<Tensor<B, 1>>,
    /// Positional embedding `[1 + h·w, width]`.
    pub positional_embedding: Param<Tensor<B, 2>>,
    /// LayerNorm before the blocks.
    pub ln_pre: LayerNorm<B>,
    /// The blocks.
    pub transformer: Transformer<B>,
    /// LayerNorm after the blocks.
    pub ln_post: LayerNorm<B>,
    /// Projection to the joint embedding `[width, embed_dim]` (applied as `x @ proj`).
    pub proj: Param<Tensor<B, 2>>,
    /// Side of a patch.
    pub patch_size: usize,
}

impl<B: Backend> VisionTransformer<B> {
    /// Token width.
    pub fn width(&self) -> usize {
        self.class_embedding.dims()[0]
    }

    /// CLIP's joint embedding size (`proj`'s output width).
    pub fn embed_dim(&self) -> usize {
        self.proj.dims()[1]
    }

    /// Tokens after `ln_post` `[B, 1 + h·w, width]`, `cut` applied to the last block's input.
    ///
    /// # Panics
    ///
    /// When the image is not square or its side is not a multiple of the patch size.
    pub fn forward_tokens_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 3>) -> Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let patches = patch_tokens(&self.conv1, self.patch_size, images);
        let [batch, len, width] = patches.dims();
        let class = self
            .class_embedding
            .val()
            .reshape([1, 1, width])
            .expand([batch, 1, width]);
        let x = Tensor::cat(vec![class, patches], 1)
            + positions(self.positional_embedding.val().unsqueeze(), len + 1);
        let x = self.ln_pre.forward(x);
        let blocks = &self.transformer.resblocks;
        let last = blocks.len().saturating_sub(1);
        let x = blocks[..last].iter().fold(x, |x, block| block.forward(x));
        let x = blocks[last..]
            .iter()
            .fold(cut(x), |x, block| block.forward(x));
        self.ln_post.forward(x)
    }
}

impl<B: Backend> Backbone<B> for VisionTransformer<B> {
    /// Patch tokens after `ln_post` on their grid `[B, width, H/patch, W/patch]`, `cut`
    /// applied to the input of the last block.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        self.forward_both_cut(images, cut).1
    }

    /// CLIP's image embedding `ln_post(x)[:, 0] @ proj` `[B, embed_dim]` and the patch-token grid.
    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        let [_, _, height, width] = images.dims();
        let (h, w) = (height / self.patch_size, width / self.patch_size);
        let tokens = self.forward_tokens_cut(images, &|x| cut_tokens(x, cut));
        let class = tokens.clone().narrow(1, 0, 1).flatten::<2>(1, 2);
        (class.matmul(self.proj.val()), tokens_to_grid(tokens, h, w))
    }
}
