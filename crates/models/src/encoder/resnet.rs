//! ResNet (He et al., 2016, "Deep Residual Learning for Image Recognition"), torchvision v1.5 layout.
//!
//! Field names follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`, ...); the classifier `fc`
//! is not built. `downsample.0/1` are named `downsample.conv/bn` here.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;

use super::batch_norm::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::backbone::Backbone;
use super::conv;

/// Batch norm epsilon of torchvision's ResNet.
const BN_EPS: f64 = 1e-5;

/// A bias-free convolution initialised as torchvision's ResNet (Kaiming normal, fan out, ReLU gain).
fn conv(channels: [usize; 2], kernel: usize, stride: usize, padding: usize) -> Conv2dConfig {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
}

fn batch_norm<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels)
        .with_epsilon(BN_EPS)
        .init(device)
}

/// Residual block kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockKind {
    /// Two 3x3 convolutions, expansion 1 (ResNet-18/34).
    Basic,
    /// 1x1, 3x3 (strided), 1x1 convolutions, expansion 4 (ResNet-50/101/152).
    Bottleneck,
}

impl BlockKind {
    /// Ratio of a block's output channels to its `planes`.
    pub fn expansion(&self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Projection shortcut `downsample`: strided 1x1 convolution then batch norm.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// torchvision `downsample.0`.
    pub conv: Conv2d<B>,
    /// torchvision `downsample.1`.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> Downsample<B> {
    fn new(channels: [usize; 2], stride: usize, device: &B::Device) -> Self {
        Self {
            conv: conv(channels, 1, stride, 0).init(device),
            bn: batch_norm(channels[1], device),
        }
    }

    /// Projects the identity path.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(conv::forward(&self.conv, x))
    }
}

/// Configuration of a residual block (torchvision's `inplanes`, `planes`, `stride`).
#[derive(Config, Debug)]
pub struct ResidualBlockConfig {
    /// Block kind.
    pub kind: BlockKind,
    /// Input channels (`inplanes`).
    pub in_channels: usize,
    /// Inner width (`planes`); the output has `planes * expansion` channels.
    pub planes: usize,
    /// Stride of the 3x3 convolution and of the shortcut.
    #[config(default = 1)]
    pub stride: usize,
}

impl ResidualBlockConfig {
    /// Output channels of the block.
    pub fn out_channels(&self) -> usize {
        self.planes * self.kind.expansion()
    }

    /// Builds the block, with a projection shortcut where torchvision has one.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResidualBlock<B> {
        let out = self.out_channels();
        let downsample = (self.stride != 1 || self.in_channels != out)
            .then(|| Downsample::new([self.in_channels, out], self.stride, device));
        match self.kind {
            BlockKind::Basic => ResidualBlock::Basic(BasicBlock {
                conv1: conv([self.in_channels, self.planes], 3, self.stride, 1).init(device),
                bn1: batch_norm(self.planes, device),
                conv2: conv([self.planes, self.planes], 3, 1, 1).init(device),
                bn2: batch_norm(self.planes, device),
                downsample,
            }),
            BlockKind::Bottleneck => ResidualBlock::Bottleneck(Bottleneck {
                conv1: conv([self.in_channels, self.planes], 1, 1, 0).init(device),
                bn1: batch_norm(self.planes, device),
                conv2: conv([self.planes, self.planes], 3, self.stride, 1).init(device),
                bn2: batch_norm(self.planes, device),
                conv3: conv([self.planes, out], 1, 1, 0).init(device),
                bn3: batch_norm(out, device),
                downsample,
            }),
        }
    }
}

/// Basic residual block: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    /// 3x3 convolution carrying the block's stride.
    pub conv1: Conv2d<B>,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm<B>,
    /// 3x3 convolution.
    pub conv2: Conv2d<B>,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// Projection shortcut, when the shape changes.
    pub downsample: Option<Downsample<B>>,
}

impl<B: Backend> BasicBlock<B> {
    /// Applies the block to `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = relu(self.bn1.forward(conv::forward(&self.conv1, x)));
        let out = self.bn2.forward(conv::forward(&self.conv2, out));
        relu(out + identity)
    }
}

/// Bottleneck residual block (stride on the 3x3 convolution, as torchvision v1.5).
#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    /// 1x1 reduction.
    pub conv1: Conv2d<B>,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm<B>,
    /// 3x3 convolution carrying the block's stride.
    pub conv2: Conv2d<B>,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// 1x1 expansion.
    pub conv3: Conv2d<B>,
    /// Batch norm after `conv3`.
    pub bn3: BatchNorm<B>,
    /// Projection shortcut, when the shape changes.
    pub downsample: Option<Downsample<B>>,
}

impl<B: Backend> Bottleneck<B> {
    /// Applies the block to `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = relu(self.bn1.forward(conv::forward(&self.conv1, x)));
        let out = relu(self.bn2.forward(conv::forward(&self.conv2, out)));
        let out = self.bn3.forward(conv::forward(&self.conv3, out));
        relu(out + identity)
    }
}

/// A residual block of either kind.
#[derive(Module, Debug)]
// Module trees are built once and moved rarely; burn's Module derive has no `Box` support.
#[allow(clippy::large_enum_variant)]
pub enum ResidualBlock<B: Backend> {
    /// Basic block.
    Basic(BasicBlock<B>),
    /// Bottleneck block.
    Bottleneck(Bottleneck<B>),
}

impl<B: Backend> ResidualBlock<B> {
    /// Applies the block to `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            ResidualBlock::Basic(block) => block.forward(x),
            ResidualBlock::Bottleneck(block) => block.forward(x),
        }
    }
}

/// Configuration of a [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Residual block kind.
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// `planes` per stage; the stem has `widths[0]` channels.
    #[config(default = "[64, 128, 256, 512]")]
    pub widths: [usize; 4],
}

impl ResNetConfig {
    /// torchvision `resnet18`.
    pub fn resnet18() -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2])
    }

    /// torchvision `resnet34`.
    pub fn resnet34() -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3])
    }

    /// torchvision `resnet50`.
    pub fn resnet50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3])
    }

    /// torchvision `resnet101`.
    pub fn resnet101() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 23, 3])
    }

    /// torchvision `resnet152`.
    pub fn resnet152() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 8, 36, 3])
    }

    /// Small basic-block ResNet for training from scratch at 64x64 on a CPU.
    pub fn resnet_tiny() -> Self {
        Self::new(BlockKind::Basic, [1, 1, 1, 1]).with_widths([16, 32, 64, 128])
    }

    /// Channels of the last stage (the feature dimension).
    pub fn out_channels(&self) -> usize {
        self.widths[3] * self.block.expansion()
    }

    /// Builds the network with torchvision's initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResNet<B> {
        let stem = self.widths[0];
        let mut in_channels = stem;
        let [layer1, layer2, layer3, layer4] = [0, 1, 2, 3].map(|stage| {
            let stride = if stage == 0 { 1 } else { 2 };
            (0..self.layers[stage])
                .map(|index| {
                    let block =
                        ResidualBlockConfig::new(self.block, in_channels, self.widths[stage])
                            .with_stride(if index == 0 { stride } else { 1 });
                    in_channels = block.out_channels();
                    block.init(device)
                })
                .collect::<Vec<_>>()
        });
        ResNet {
            conv1: conv([3, stem], 7, 2, 3).init(device),
            bn1: batch_norm(stem, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

/// ResNet trunk without the classifier.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// 7x7 stride-2 stem convolution.
    pub conv1: Conv2d<B>,
    /// Stem batch norm.
    pub bn1: BatchNorm<B>,
    /// 3x3 stride-2 max pool.
    pub maxpool: MaxPool2d,
    /// Stage 1 (stride 1).
    pub layer1: Vec<ResidualBlock<B>>,
    /// Stage 2 (stride 2).
    pub layer2: Vec<ResidualBlock<B>>,
    /// Stage 3 (stride 2).
    pub layer3: Vec<ResidualBlock<B>>,
    /// Stage 4 (stride 2).
    pub layer4: Vec<ResidualBlock<B>>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
}

impl<B: Backend> Backbone<B> for ResNet<B> {
    /// Output of `layer4` `[B, C, H/32, W/32]`, with `cut` applied to its input.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let x = relu(self.bn1.forward(conv::forward(&self.conv1, images)));
        let x = self.maxpool.forward(x);
        let x = [&self.layer1, &self.layer2, &self.layer3]
            .into_iter()
            .flatten()
            .fold(x, |x, block| block.forward(x));
        self.layer4.iter().fold(cut(x), |x, block| block.forward(x))
    }

    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        super::backbone::cnn_both(self, images, cut, |spatial| self.pool(spatial))
    }
}

impl<B: Backend> ResNet<B> {
    /// Global average pool `[B, C]`.
    pub fn pool(&self, spatial: Tensor<B, 4>) -> Tensor<B, 2> {
        self.avgpool.forward(spatial).flatten(1, 3)
    }
}
