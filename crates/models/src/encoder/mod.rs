//! Image encoders with torchvision module trees: ResNet, VGG and Inception v3.
//!
//! Every encoder mirrors torchvision's `state_dict` layout so that pretrained weights map by
//! name (see [`weights`]). Each one yields a pooled feature vector and a spatial grid taken
//! before the final pooling, for show-and-tell and show-attend-tell decoders respectively.

mod backbone;
pub mod batch_norm;
mod batch_norm_cpu;
pub mod conv;
mod flex;
pub mod inception;
pub mod resnet;
pub mod vgg;
pub mod weights;

use std::path::PathBuf;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use backbone::Backbone;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use inception::{InceptionV3, InceptionV3Config};
pub use resnet::{ResNet, ResNetConfig};
pub use vgg::{Vgg, VggConfig};
pub use weights::load_torchvision;

/// Encoder architectures; serde names are torchvision's model names.
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
}

impl Arch {
    /// Every architecture, in declaration order.
    pub const ALL: [Arch; 15] = [
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
    ];

    /// The torchvision model name, e.g. `"vgg16_bn"`.
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
        }
    }

    /// Parses a torchvision model name, e.g. `"resnet50"`.
    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|arch| arch.name() == name)
    }

    /// Side of the square input image the architecture is meant for.
    pub fn input_size(&self) -> u32 {
        match self {
            Arch::ResnetTiny => 64,
            Arch::InceptionV3 => 299,
            _ => 224,
        }
    }

    /// Length of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        match self {
            Arch::ResnetTiny => 128,
            Arch::Resnet18 | Arch::Resnet34 => 512,
            Arch::Resnet50 | Arch::Resnet101 | Arch::Resnet152 | Arch::InceptionV3 => 2048,
            _ => 4096,
        }
    }

    /// Channels of the spatial grid.
    pub fn spatial_channels(&self) -> usize {
        match self {
            Arch::ResnetTiny => 128,
            Arch::Resnet18 | Arch::Resnet34 => 512,
            Arch::Resnet50 | Arch::Resnet101 | Arch::Resnet152 | Arch::InceptionV3 => 2048,
            _ => 512,
        }
    }

    /// Side of the spatial grid at [`Arch::input_size`] (7 for ResNet, 14 for VGG, 8 for Inception, 2 for tiny).
    pub fn spatial_size(&self) -> usize {
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
}

impl EncoderConfig {
    /// Builds the encoder with freshly initialised weights (ignores `weights`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Encoder<B> {
        if let Some(config) = self.arch.resnet_config() {
            return Encoder::ResNet(config.init(device));
        }
        if let Some(config) = self.arch.vgg_config() {
            return Encoder::Vgg(config.init(device));
        }
        Encoder::Inception(
            InceptionV3Config::new()
                .with_transform_input(self.transform_input)
                .init(device),
        )
    }

    /// Builds the encoder and, when `weights` is set, imports that torchvision checkpoint.
    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<Encoder<B>, crate::import::ImportError> {
        let encoder = self.init(device);
        match &self.weights {
            Some(path) => load_torchvision(encoder, path),
            None => Ok(encoder),
        }
    }
}

/// An image encoder: one of the torchvision architectures.
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
        }
    }

    fn pool(&self, spatial: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            Encoder::ResNet(model) => model.pool(spatial),
            Encoder::Vgg(model) => model.pool(spatial),
            Encoder::Inception(model) => model.pool(spatial),
        }
    }
}
