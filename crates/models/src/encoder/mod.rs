//! Image encoders with torchvision module trees: ResNet, VGG, Inception v3 and the Vision
//! Transformer, and CLIP's image tower with open_clip's.
//!
//! Every encoder mirrors its reference `state_dict` layout so that pretrained weights map by
//! name (see [`weights`]). Each one yields a global feature vector (a CNN's pooled features, a
//! ViT's class token) and a spatial grid (a CNN's last feature map before the final pooling, a
//! ViT's patch tokens), for show-and-tell and show-attend-tell decoders respectively.

mod backbone;
pub mod batch_norm;
mod batch_norm_cpu;
pub mod clip;
pub mod conv;
mod flex;
pub mod inception;
pub mod multihead_attention;
pub mod resnet;
pub mod vgg;
pub mod vit;
pub mod weights;

use std::path::PathBuf;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use backbone::Backbone;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use clip::ClipVisionConfig;
pub use inception::{InceptionV3, InceptionV3Config};
pub use resnet::{ResNet, ResNetConfig};
pub use vgg::{Vgg, VggConfig};
pub use vit::{VisionTransformer, VisionTransformerConfig};
pub use weights::load_torchvision;

/// Encoder architectures; serde names are torchvision's model names, and `clip_` before
/// open_clip's model name for CLIP's image towers (`ViT-B-32` → `clip_vit_b_32`,
/// `ViT-B-32-quickgelu` → `clip_vit_b_32_quickgelu`, the one OpenAI's weights need).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// ResNet with basic blocks, layers `[1, 1, 1, 1]`, widths `[16, 32, 64, 128]`, for 64x64 CPU training.
    ResnetTiny,
    /// ResNet-18.
    Resnet18,
    /// ResNet-34.
    Resnet34,
    /// ResNet-50.
    Resnet50,
    /// ResNet-101.
    Resnet101,
    /// ResNet-152.
    Resnet152,
    /// VGG-11.
    Vgg11,
    /// VGG-11 with batch norm.
    Vgg11Bn,
    /// VGG-13.
    Vgg13,
    /// VGG-13 with batch norm.
    Vgg13Bn,
    /// VGG-16.
    Vgg16,
    /// VGG-16 with batch norm.
    Vgg16Bn,
    /// VGG-19.
    Vgg19,
    /// VGG-19 with batch norm.
    Vgg19Bn,
    /// Inception v3 without the auxiliary head.
    InceptionV3,
    /// Vision Transformer B/16 (torchvision `vit_b_16`).
    #[serde(rename = "vit_b_16")]
    VitB16,
    /// Vision Transformer B/32 (torchvision `vit_b_32`).
    #[serde(rename = "vit_b_32")]
    VitB32,
    /// Vision Transformer L/16 (torchvision `vit_l_16`).
    #[serde(rename = "vit_l_16")]
    VitL16,
    /// caplab's own small Vision Transformer for 64x64 CPU training (no pretrained weights):
    /// patch 8, 4 blocks of width 128 with 4 heads and an MLP of 256, the same module as
    /// `vit_b_16` ([`VisionTransformerConfig::vit_tiny`]).
    VitTiny,
    /// CLIP's ViT-B/32 image tower with GELU (open_clip `ViT-B-32`, e.g. its LAION weights).
    #[serde(rename = "clip_vit_b_32")]
    ClipVitB32,
    /// CLIP's ViT-B/32 image tower with QuickGELU (open_clip `ViT-B-32-quickgelu`: OpenAI's
    /// weights).
    #[serde(rename = "clip_vit_b_32_quickgelu")]
    ClipVitB32QuickGelu,
    /// CLIP's ViT-B/16 image tower with GELU (open_clip `ViT-B-16`).
    #[serde(rename = "clip_vit_b_16")]
    ClipVitB16,
    /// CLIP's ViT-B/16 image tower with QuickGELU (open_clip `ViT-B-16-quickgelu`: OpenAI's
    /// weights).
    #[serde(rename = "clip_vit_b_16_quickgelu")]
    ClipVitB16QuickGelu,
}

impl Arch {
    /// Every architecture, in declaration order.
    pub const ALL: [Arch; 23] = [
        Arch::ResnetTiny,
        Arch::Resnet18,
        Arch::Resnet34,
        Arch::Resnet50,
        Arch::Resnet101,
        Arch::Resnet152,
        Arch::Vgg11,
        Arch::Vgg11Bn,
        Arch::Vgg13,
        Arch::Vgg13Bn,
        Arch::Vgg16,
        Arch::Vgg16Bn,
        Arch::Vgg19,
        Arch::Vgg19Bn,
        Arch::InceptionV3,
        Arch::VitB16,
        Arch::VitB32,
        Arch::VitL16,
        Arch::VitTiny,
        Arch::ClipVitB32,
        Arch::ClipVitB32QuickGelu,
        Arch::ClipVitB16,
        Arch::ClipVitB16QuickGelu,
    ];

    /// The torchvision model name, e.g. `"vgg16_bn"` (`clip_` + open_clip's for CLIP).
    pub fn name(&self) -> &'static str {
        match self {
            Arch::ResnetTiny => "resnet_tiny",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
            Arch::Resnet101 => "resnet101",
            Arch::Resnet152 => "resnet152",
            Arch::Vgg11 => "vgg11",
            Arch::Vgg11Bn => "vgg11_bn",
            Arch::Vgg13 => "vgg13",
            Arch::Vgg13Bn => "vgg13_bn",
            Arch::Vgg16 => "vgg16",
            Arch::Vgg16Bn => "vgg16_bn",
            Arch::Vgg19 => "vgg19",
            Arch::Vgg19Bn => "vgg19_bn",
            Arch::InceptionV3 => "inception_v3",
            Arch::VitB16 => "vit_b_16",
            Arch::VitB32 => "vit_b_32",
            Arch::VitL16 => "vit_l_16",
            Arch::VitTiny => "vit_tiny",
            Arch::ClipVitB32 => "clip_vit_b_32",
            Arch::ClipVitB32QuickGelu => "clip_vit_b_32_quickgelu",
            Arch::ClipVitB16 => "clip_vit_b_16",
            Arch::ClipVitB16QuickGelu => "clip_vit_b_16_quickgelu",
        }
    }

    /// Parses a torchvision model name, e.g. `"resnet50"`.
    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|arch| arch.name() == name)
    }

    /// Side of the square input image the architecture is meant for.
    pub fn input_size(&self) -> u32 {
        match self {
            Arch::ResnetTiny | Arch::VitTiny => 64,
            Arch::InceptionV3 => 299,
            _ => 224,
        }
    }

    /// Length of the global feature vector (pooled features; a ViT's class token; CLIP's
    /// projected image embedding).
    pub fn feature_dim(&self) -> usize {
        match self {
            Arch::ResnetTiny | Arch::VitTiny => 128,
            Arch::Resnet18 | Arch::Resnet34 => 512,
            _ if self.is_clip() => 512,
            Arch::Resnet50 | Arch::Resnet101 | Arch::Resnet152 | Arch::InceptionV3 => 2048,
            Arch::VitB16 | Arch::VitB32 => 768,
            Arch::VitL16 => 1024,
            _ => 4096,
        }
    }

    /// Channels of the spatial grid (a ViT's token width).
    pub fn spatial_channels(&self) -> usize {
        match self {
            Arch::ResnetTiny | Arch::VitTiny => 128,
            Arch::Resnet18 | Arch::Resnet34 => 512,
            Arch::Resnet50 | Arch::Resnet101 | Arch::Resnet152 | Arch::InceptionV3 => 2048,
            Arch::VitB16 | Arch::VitB32 => 768,
            _ if self.is_clip() => 768,
            Arch::VitL16 => 1024,
            _ => 512,
        }
    }

    /// Side of a ViT's square patch (`None` for a CNN).
    pub fn patch_size(&self) -> Option<usize> {
        match self {
            Arch::VitB16 | Arch::VitL16 | Arch::ClipVitB16 | Arch::ClipVitB16QuickGelu => Some(16),
            Arch::VitB32 | Arch::ClipVitB32 | Arch::ClipVitB32QuickGelu => Some(32),
            Arch::VitTiny => Some(8),
            _ => None,
        }
    }

    /// Whether this is one of CLIP's image towers (open_clip weights and CLIP preprocessing).
    pub fn is_clip(&self) -> bool {
        matches!(
            self,
            Arch::ClipVitB32
                | Arch::ClipVitB32QuickGelu
                | Arch::ClipVitB16
                | Arch::ClipVitB16QuickGelu
        )
    }

    /// The ViT configuration at `image_size` ([`Arch::input_size`] for the pretrained
    /// weights), if this is one: torchvision's, or caplab's own `vit_tiny`.
    pub fn vit_config(&self, image_size: usize) -> Option<VisionTransformerConfig> {
        match self {
            Arch::VitB16 => Some(VisionTransformerConfig::vit_b_16(image_size)),
            Arch::VitB32 => Some(VisionTransformerConfig::vit_b_32(image_size)),
            Arch::VitL16 => Some(VisionTransformerConfig::vit_l_16(image_size)),
            Arch::VitTiny => Some(VisionTransformerConfig::vit_tiny(image_size)),
            _ => None,
        }
    }

    /// The CLIP image tower's configuration at `image_size` ([`Arch::input_size`] for the
    /// pretrained weights), if this is one.
    pub fn clip_config(&self, image_size: usize) -> Option<ClipVisionConfig> {
        match self {
            Arch::ClipVitB32 => Some(ClipVisionConfig::vit_b_32(image_size).with_quick_gelu(false)),
            Arch::ClipVitB32QuickGelu => Some(ClipVisionConfig::vit_b_32(image_size)),
            Arch::ClipVitB16 => Some(ClipVisionConfig::vit_b_16(image_size).with_quick_gelu(false)),
            Arch::ClipVitB16QuickGelu => Some(ClipVisionConfig::vit_b_16(image_size)),
            _ => None,
        }
    }

    /// Checks that the encoder can take `size × size` images: for a ViT, `size` must be a
    /// multiple of the patch size (the message names both).
    pub fn check_image_size(&self, size: u32) -> Result<(), String> {
        match self.patch_size() {
            Some(patch) if size == 0 || !(size as usize).is_multiple_of(patch) => Err(format!(
                "must be a multiple of {self}'s patch size {patch}, got {size}"
            )),
            _ => Ok(()),
        }
    }

    /// Side of the spatial grid at [`Arch::input_size`] (7 for ResNet, 14 for VGG, 8 for
    /// Inception, 2 for resnet_tiny, input size / patch for a ViT: 14 or 7, 8 for vit_tiny).
    pub fn spatial_size(&self) -> usize {
        if let Some(patch) = self.patch_size() {
            return self.input_size() as usize / patch;
        }
        match self {
            Arch::ResnetTiny => 2,
            Arch::Resnet18
            | Arch::Resnet34
            | Arch::Resnet50
            | Arch::Resnet101
            | Arch::Resnet152 => 7,
            Arch::InceptionV3 => 8,
            _ => 14,
        }
    }

    /// Whether this is one of the ResNet family.
    pub fn is_resnet(&self) -> bool {
        self.resnet_config().is_some()
    }

    /// The ResNet configuration of this architecture, if it is one.
    pub fn resnet_config(&self) -> Option<ResNetConfig> {
        match self {
            Arch::ResnetTiny => Some(ResNetConfig::resnet_tiny()),
            Arch::Resnet18 => Some(ResNetConfig::resnet18()),
            Arch::Resnet34 => Some(ResNetConfig::resnet34()),
            Arch::Resnet50 => Some(ResNetConfig::resnet50()),
            Arch::Resnet101 => Some(ResNetConfig::resnet101()),
            Arch::Resnet152 => Some(ResNetConfig::resnet152()),
            _ => None,
        }
    }

    /// The VGG configuration of this architecture, if it is one.
    pub fn vgg_config(&self) -> Option<VggConfig> {
        match self {
            Arch::Vgg11 => Some(VggConfig::vgg11(false)),
            Arch::Vgg11Bn => Some(VggConfig::vgg11(true)),
            Arch::Vgg13 => Some(VggConfig::vgg13(false)),
            Arch::Vgg13Bn => Some(VggConfig::vgg13(true)),
            Arch::Vgg16 => Some(VggConfig::vgg16(false)),
            Arch::Vgg16Bn => Some(VggConfig::vgg16(true)),
            Arch::Vgg19 => Some(VggConfig::vgg19(false)),
            Arch::Vgg19Bn => Some(VggConfig::vgg19(true)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Arch::ALL.iter().map(Arch::name).collect();
            format!(
                "unknown encoder '{s}', expected one of: {}",
                names.join(", ")
            )
        })
    }
}

/// Configuration of an image [`Encoder`].
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Architecture to build.
    pub arch: Arch,
    /// torchvision `state_dict` (`.pth`/`.pt` or `.safetensors`) imported by [`EncoderConfig::load`].
    #[config(default = "None")]
    pub weights: Option<PathBuf>,
    /// Inception only: re-normalise ImageNet-normalised input to `(x - 0.5) / 0.5`, as torchvision's pretrained model.
    #[config(default = true)]
    pub transform_input: bool,
    /// Whether to build the layers only the pooled feature needs (VGG's fc6 and fc7; the other
    /// architectures have none). Without them the encoder yields only its spatial grid
    /// ([`Encoder::has_pooled`]), for decoders that attend over it.
    #[config(default = true)]
    pub pooled_layers: bool,
}

impl EncoderConfig {
    /// Builds the encoder with freshly initialised weights (ignores `weights`).
    ///
    /// A ViT or CLIP tower is built for [`Arch::input_size`] (224, the size of the pretrained
    /// positional embeddings); other multiples of the patch size resample the embedding.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Encoder<B> {
        let size = self.arch.input_size() as usize;
        if let Some(config) = self.arch.vit_config(size) {
            return Encoder::Vit(config.init(device));
        }
        if let Some(config) = self.arch.clip_config(size) {
            return Encoder::Clip(config.init(device));
        }
        if let Some(config) = self.arch.resnet_config() {
            return Encoder::ResNet(config.init(device));
        }
        if let Some(config) = self.arch.vgg_config() {
            return Encoder::Vgg(config.with_classifier(self.pooled_layers).init(device));
        }
        Encoder::Inception(
            InceptionV3Config::new()
                .with_transform_input(self.transform_input)
                .init(device),
        )
    }

    /// Builds the encoder and, when `weights` is set, imports that checkpoint (torchvision's
    /// `state_dict`, or open_clip's for CLIP; see [`load_encoder`]).
    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<Encoder<B>, crate::import::ImportError> {
        let encoder = self.init(device);
        match &self.weights {
            Some(path) => load_encoder(encoder, path),
            None => Ok(encoder),
        }
    }
}

/// An image encoder: one of the torchvision architectures or CLIP's image tower.
#[derive(Module, Debug)]
// Module trees are built once and moved rarely; burn's Module derive has no `Box` support.
#[allow(clippy::large_enum_variant)]
pub enum Encoder<B: Backend> {
    /// ResNet family.
    ResNet(ResNet<B>),
    /// VGG family.
    Vgg(Vgg<B>),
    /// Inception v3.
    Inception(InceptionV3<B>),
    /// torchvision Vision Transformer.
    Vit(VisionTransformer<B>),
    /// CLIP's image tower (open_clip's `VisionTransformer`).
    Clip(clip::VisionTransformer<B>),
}

impl<B: Backend> Encoder<B> {
    /// Whether the encoder yields the pooled feature ([`Backbone::forward_pooled`],
    /// [`Backbone::forward_both`]): false for a VGG built without fc6/fc7
    /// ([`EncoderConfig::pooled_layers`] `= false`), whose pooled forwards panic.
    pub fn has_pooled(&self) -> bool {
        match self {
            Encoder::Vgg(model) => model.has_classifier(),
            _ => true,
        }
    }

    /// Prefixes of torchvision `state_dict` keys whose layers this encoder was built without
    /// (`classifier.` for a VGG without fc6/fc7): [`load_encoder`] does not read them.
    pub fn unbuilt_prefixes(&self) -> &'static [&'static str] {
        match self {
            Encoder::Vgg(model) => model.unbuilt_prefixes(),
            _ => &[],
        }
    }
}

impl<B: Backend> Backbone<B> for Encoder<B> {
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        match self {
            Encoder::ResNet(model) => model.forward_spatial_cut(images, cut),
            Encoder::Vgg(model) => model.forward_spatial_cut(images, cut),
            Encoder::Inception(model) => model.forward_spatial_cut(images, cut),
            Encoder::Vit(model) => model.forward_spatial_cut(images, cut),
            Encoder::Clip(model) => model.forward_spatial_cut(images, cut),
        }
    }

    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        match self {
            Encoder::ResNet(model) => model.forward_both_cut(images, cut),
            Encoder::Vgg(model) => model.forward_both_cut(images, cut),
            Encoder::Inception(model) => model.forward_both_cut(images, cut),
            Encoder::Vit(model) => model.forward_both_cut(images, cut),
            Encoder::Clip(model) => model.forward_both_cut(images, cut),
        }
    }
}

/// Loads a checkpoint into an [`Encoder`]: open_clip's layout for CLIP's tower
/// ([`weights::load_open_clip`]), torchvision's for the others
/// ([`weights::load_torchvision_module_skipping`], without the keys of layers the encoder was
/// built without, [`Encoder::unbuilt_prefixes`]); the wrong layout is an error naming the file
/// and the keys that show it ([`weights::check_layout`]).
pub fn load_encoder<B: Backend>(
    encoder: Encoder<B>,
    path: &std::path::Path,
) -> Result<Encoder<B>, crate::import::ImportError> {
    weights::check_layout(path, matches!(encoder, Encoder::Clip(_)))?;
    match encoder {
        Encoder::Clip(tower) => weights::load_open_clip(tower, path).map(Encoder::Clip),
        encoder => {
            let unbuilt = encoder.unbuilt_prefixes();
            weights::load_torchvision_module_skipping(encoder, path, unbuilt)
        }
    }
}
