//! Inception v3 (Szegedy et al., 2016, "Rethinking the Inception Architecture for Computer Vision").
//!
//! Mirrors torchvision's `Inception3` without the auxiliary head, dropout and `fc`. torchvision's
//! capitalised names (`Conv2d_1a_3x3`, `Mixed_5b`) are lower-cased here (`conv2d_1a_3x3`,
//! `mixed_5b`); everything below them (`branch1x1.conv`, `branch7x7_2.bn`, ...) is identical.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;

use super::batch_norm::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::{Tensor, TensorData};

use super::backbone::Backbone;
use super::conv;

/// Batch norm epsilon of torchvision's `BasicConv2d`.
const BN_EPS: f64 = 0.001;

/// Configuration of a [`BasicConv2d`].
#[derive(Config, Debug)]
pub struct BasicConv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size `[h, w]`.
    pub kernel_size: [usize; 2],
    /// Stride `[h, w]`.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Symmetric zero padding `[h, w]`.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
}

impl BasicConv2dConfig {
    /// Builds the layer; weights are normal with std 0.1 as torchvision's (truncated) init.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BasicConv2d<B> {
        let [ph, pw] = self.padding;
        BasicConv2d {
            conv: Conv2dConfig::new([self.in_channels, self.out_channels], self.kernel_size)
                .with_stride(self.stride)
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_bias(false)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.1,
                })
                .init(device),
            bn: BatchNormConfig::new(self.out_channels)
                .with_epsilon(BN_EPS)
                .init(device),
        }
    }
}

/// Convolution without bias, batch norm (eps 0.001), ReLU.
#[derive(Module, Debug)]
pub struct BasicConv2d<B: Backend> {
    /// Bias-free convolution.
    pub conv: Conv2d<B>,
    /// Batch norm.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> BasicConv2d<B> {
    /// Applies conv, batch norm and ReLU.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.bn.forward(conv::forward(&self.conv, x)))
    }
}

/// Shorthand for a [`BasicConv2d`] with square or rectangular kernel and padding.
fn basic<B: Backend>(
    channels: [usize; 2],
    kernel: [usize; 2],
    stride: usize,
    padding: [usize; 2],
    device: &B::Device,
) -> BasicConv2d<B> {
    BasicConv2dConfig::new(channels[0], channels[1], kernel)
        .with_stride([stride, stride])
        .with_padding(padding)
        .init(device)
}

/// 3x3, stride 1, padding 1 average pool counting the padding, as torchvision's `F.avg_pool2d`.
fn avg_pool_3x3<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    avg_pool2d(x, [3, 3], [1, 1], [1, 1], true, false)
}

/// 3x3 stride-2 max pool without padding.
fn max_pool_3x3_s2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool2d(x, [3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// Inception-A (35x35 grid): 1x1, 5x5, double 3x3 and pooled branches.
#[derive(Module, Debug)]
pub struct InceptionA<B: Backend> {
    /// 1x1 branch (64).
    pub branch1x1: BasicConv2d<B>,
    /// 5x5 branch reduction (48).
    pub branch5x5_1: BasicConv2d<B>,
    /// 5x5 branch (64).
    pub branch5x5_2: BasicConv2d<B>,
    /// Double-3x3 branch reduction (64).
    pub branch3x3dbl_1: BasicConv2d<B>,
    /// Double-3x3 branch, first 3x3 (96).
    pub branch3x3dbl_2: BasicConv2d<B>,
    /// Double-3x3 branch, second 3x3 (96).
    pub branch3x3dbl_3: BasicConv2d<B>,
    /// Pooled branch 1x1 (`pool_features`).
    pub branch_pool: BasicConv2d<B>,
}

impl<B: Backend> InceptionA<B> {
    /// torchvision `InceptionA(in_channels, pool_features)`; outputs `224 + pool_features` channels.
    pub fn new(in_channels: usize, pool_features: usize, device: &B::Device) -> Self {
        Self {
            branch1x1: basic([in_channels, 64], [1, 1], 1, [0, 0], device),
            branch5x5_1: basic([in_channels, 48], [1, 1], 1, [0, 0], device),
            branch5x5_2: basic([48, 64], [5, 5], 1, [2, 2], device),
            branch3x3dbl_1: basic([in_channels, 64], [1, 1], 1, [0, 0], device),
            branch3x3dbl_2: basic([64, 96], [3, 3], 1, [1, 1], device),
            branch3x3dbl_3: basic([96, 96], [3, 3], 1, [1, 1], device),
            branch_pool: basic([in_channels, pool_features], [1, 1], 1, [0, 0], device),
        }
    }

    /// Concatenates the branches along channels.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let branch1x1 = self.branch1x1.forward(x.clone());
        let branch5x5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let branch3x3dbl = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let branch_pool = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)
    }
}

/// Inception-B (grid reduction 35 -> 17): strided 3x3, strided double 3x3 and max pool.
#[derive(Module, Debug)]
pub struct InceptionB<B: Backend> {
    /// Strided 3x3 branch (384).
    pub branch3x3: BasicConv2d<B>,
    /// Double-3x3 branch reduction (64).
    pub branch3x3dbl_1: BasicConv2d<B>,
    /// Double-3x3 branch, first 3x3 (96).
    pub branch3x3dbl_2: BasicConv2d<B>,
    /// Double-3x3 branch, strided 3x3 (96).
    pub branch3x3dbl_3: BasicConv2d<B>,
}

impl<B: Backend> InceptionB<B> {
    /// torchvision `InceptionB(in_channels)`; outputs `480 + in_channels` channels.
    pub fn new(in_channels: usize, device: &B::Device) -> Self {
        Self {
            branch3x3: basic([in_channels, 384], [3, 3], 2, [0, 0], device),
            branch3x3dbl_1: basic([in_channels, 64], [1, 1], 1, [0, 0], device),
            branch3x3dbl_2: basic([64, 96], [3, 3], 1, [1, 1], device),
            branch3x3dbl_3: basic([96, 96], [3, 3], 2, [0, 0], device),
        }
    }

    /// Concatenates the branches along channels.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let branch3x3 = self.branch3x3.forward(x.clone());
        let branch3x3dbl = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let branch_pool = max_pool_3x3_s2(x);
        Tensor::cat(vec![branch3x3, branch3x3dbl, branch_pool], 1)
    }
}

/// Inception-C (17x17 grid): factorised 7x7 convolutions.
#[derive(Module, Debug)]
pub struct InceptionC<B: Backend> {
    /// 1x1 branch (192).
    pub branch1x1: BasicConv2d<B>,
    /// 7x7 branch reduction.
    pub branch7x7_1: BasicConv2d<B>,
    /// 7x7 branch, 1x7.
    pub branch7x7_2: BasicConv2d<B>,
    /// 7x7 branch, 7x1 (192).
    pub branch7x7_3: BasicConv2d<B>,
    /// Double-7x7 branch reduction.
    pub branch7x7dbl_1: BasicConv2d<B>,
    /// Double-7x7 branch, 7x1.
    pub branch7x7dbl_2: BasicConv2d<B>,
    /// Double-7x7 branch, 1x7.
    pub branch7x7dbl_3: BasicConv2d<B>,
    /// Double-7x7 branch, 7x1.
    pub branch7x7dbl_4: BasicConv2d<B>,
    /// Double-7x7 branch, 1x7 (192).
    pub branch7x7dbl_5: BasicConv2d<B>,
    /// Pooled branch 1x1 (192).
    pub branch_pool: BasicConv2d<B>,
}

impl<B: Backend> InceptionC<B> {
    /// torchvision `InceptionC(in_channels, channels_7x7)`; outputs 768 channels.
    pub fn new(in_channels: usize, channels_7x7: usize, device: &B::Device) -> Self {
        let c7 = channels_7x7;
        Self {
            branch1x1: basic([in_channels, 192], [1, 1], 1, [0, 0], device),
            branch7x7_1: basic([in_channels, c7], [1, 1], 1, [0, 0], device),
            branch7x7_2: basic([c7, c7], [1, 7], 1, [0, 3], device),
            branch7x7_3: basic([c7, 192], [7, 1], 1, [3, 0], device),
            branch7x7dbl_1: basic([in_channels, c7], [1, 1], 1, [0, 0], device),
            branch7x7dbl_2: basic([c7, c7], [7, 1], 1, [3, 0], device),
            branch7x7dbl_3: basic([c7, c7], [1, 7], 1, [0, 3], device),
            branch7x7dbl_4: basic([c7, c7], [7, 1], 1, [3, 0], device),
            branch7x7dbl_5: basic([c7, 192], [1, 7], 1, [0, 3], device),
            branch_pool: basic([in_channels, 192], [1, 1], 1, [0, 0], device),
        }
    }

    /// Concatenates the branches along channels.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let branch1x1 = self.branch1x1.forward(x.clone());
        let branch7x7 = [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3]
            .into_iter()
            .fold(x.clone(), |x, layer| layer.forward(x));
        let branch7x7dbl = [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ]
        .into_iter()
        .fold(x.clone(), |x, layer| layer.forward(x));
        let branch_pool = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)
    }
}

/// Inception-D (grid reduction 17 -> 8): strided 3x3, strided 7x7-then-3x3 and max pool.
#[derive(Module, Debug)]
pub struct InceptionD<B: Backend> {
    /// 3x3 branch reduction (192).
    pub branch3x3_1: BasicConv2d<B>,
    /// Strided 3x3 (320).
    pub branch3x3_2: BasicConv2d<B>,
    /// 7x7x3 branch reduction (192).
    pub branch7x7x3_1: BasicConv2d<B>,
    /// 7x7x3 branch, 1x7.
    pub branch7x7x3_2: BasicConv2d<B>,
    /// 7x7x3 branch, 7x1.
    pub branch7x7x3_3: BasicConv2d<B>,
    /// 7x7x3 branch, strided 3x3 (192).
    pub branch7x7x3_4: BasicConv2d<B>,
}

impl<B: Backend> InceptionD<B> {
    /// torchvision `InceptionD(in_channels)`; outputs `512 + in_channels` channels.
    pub fn new(in_channels: usize, device: &B::Device) -> Self {
        Self {
            branch3x3_1: basic([in_channels, 192], [1, 1], 1, [0, 0], device),
            branch3x3_2: basic([192, 320], [3, 3], 2, [0, 0], device),
            branch7x7x3_1: basic([in_channels, 192], [1, 1], 1, [0, 0], device),
            branch7x7x3_2: basic([192, 192], [1, 7], 1, [0, 3], device),
            branch7x7x3_3: basic([192, 192], [7, 1], 1, [3, 0], device),
            branch7x7x3_4: basic([192, 192], [3, 3], 2, [0, 0], device),
        }
    }

    /// Concatenates the branches along channels.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let branch3x3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let branch7x7x3 = [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ]
        .into_iter()
        .fold(x.clone(), |x, layer| layer.forward(x));
        let branch_pool = max_pool_3x3_s2(x);
        Tensor::cat(vec![branch3x3, branch7x7x3, branch_pool], 1)
    }
}

/// Inception-E (8x8 grid): expanded filter banks with split 1x3 / 3x1 outputs.
#[derive(Module, Debug)]
pub struct InceptionE<B: Backend> {
    /// 1x1 branch (320).
    pub branch1x1: BasicConv2d<B>,
    /// 3x3 branch reduction (384).
    pub branch3x3_1: BasicConv2d<B>,
    /// 3x3 branch, 1x3 half (384).
    pub branch3x3_2a: BasicConv2d<B>,
    /// 3x3 branch, 3x1 half (384).
    pub branch3x3_2b: BasicConv2d<B>,
    /// Double-3x3 branch reduction (448).
    pub branch3x3dbl_1: BasicConv2d<B>,
    /// Double-3x3 branch, 3x3 (384).
    pub branch3x3dbl_2: BasicConv2d<B>,
    /// Double-3x3 branch, 1x3 half (384).
    pub branch3x3dbl_3a: BasicConv2d<B>,
    /// Double-3x3 branch, 3x1 half (384).
    pub branch3x3dbl_3b: BasicConv2d<B>,
    /// Pooled branch 1x1 (192).
    pub branch_pool: BasicConv2d<B>,
}

impl<B: Backend> InceptionE<B> {
    /// torchvision `InceptionE(in_channels)`; outputs 2048 channels.
    pub fn new(in_channels: usize, device: &B::Device) -> Self {
        Self {
            branch1x1: basic([in_channels, 320], [1, 1], 1, [0, 0], device),
            branch3x3_1: basic([in_channels, 384], [1, 1], 1, [0, 0], device),
            branch3x3_2a: basic([384, 384], [1, 3], 1, [0, 1], device),
            branch3x3_2b: basic([384, 384], [3, 1], 1, [1, 0], device),
            branch3x3dbl_1: basic([in_channels, 448], [1, 1], 1, [0, 0], device),
            branch3x3dbl_2: basic([448, 384], [3, 3], 1, [1, 1], device),
            branch3x3dbl_3a: basic([384, 384], [1, 3], 1, [0, 1], device),
            branch3x3dbl_3b: basic([384, 384], [3, 1], 1, [1, 0], device),
            branch_pool: basic([in_channels, 192], [1, 1], 1, [0, 0], device),
        }
    }

    /// Concatenates the branches along channels.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let branch1x1 = self.branch1x1.forward(x.clone());
        let branch3x3 = self.branch3x3_1.forward(x.clone());
        let branch3x3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(branch3x3.clone()),
                self.branch3x3_2b.forward(branch3x3),
            ],
            1,
        );
        let branch3x3dbl = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let branch3x3dbl = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(branch3x3dbl.clone()),
                self.branch3x3dbl_3b.forward(branch3x3dbl),
            ],
            1,
        );
        let branch_pool = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)
    }
}

/// Configuration of an [`InceptionV3`].
#[derive(Config, Debug)]
pub struct InceptionV3Config {
    /// Re-normalise ImageNet-normalised input to `(x - 0.5) / 0.5`, as torchvision's pretrained model.
    #[config(default = true)]
    pub transform_input: bool,
}

impl InceptionV3Config {
    /// Builds the network.
    pub fn init<B: Backend>(&self, device: &B::Device) -> InceptionV3<B> {
        let max_pool = || MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
        InceptionV3 {
            conv2d_1a_3x3: basic([3, 32], [3, 3], 2, [0, 0], device),
            conv2d_2a_3x3: basic([32, 32], [3, 3], 1, [0, 0], device),
            conv2d_2b_3x3: basic([32, 64], [3, 3], 1, [1, 1], device),
            maxpool1: max_pool(),
            conv2d_3b_1x1: basic([64, 80], [1, 1], 1, [0, 0], device),
            conv2d_4a_3x3: basic([80, 192], [3, 3], 1, [0, 0], device),
            maxpool2: max_pool(),
            mixed_5b: InceptionA::new(192, 32, device),
            mixed_5c: InceptionA::new(256, 64, device),
            mixed_5d: InceptionA::new(288, 64, device),
            mixed_6a: InceptionB::new(288, device),
            mixed_6b: InceptionC::new(768, 128, device),
            mixed_6c: InceptionC::new(768, 160, device),
            mixed_6d: InceptionC::new(768, 160, device),
            mixed_6e: InceptionC::new(768, 192, device),
            mixed_7a: InceptionD::new(768, device),
            mixed_7b: InceptionE::new(1280, device),
            mixed_7c: InceptionE::new(2048, device),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            transform_input: self.transform_input,
        }
    }
}

/// Inception v3 trunk up to the global average pool.
#[derive(Module, Debug)]
pub struct InceptionV3<B: Backend> {
    /// torchvision `Conv2d_1a_3x3`.
    pub conv2d_1a_3x3: BasicConv2d<B>,
    /// torchvision `Conv2d_2a_3x3`.
    pub conv2d_2a_3x3: BasicConv2d<B>,
    /// torchvision `Conv2d_2b_3x3`.
    pub conv2d_2b_3x3: BasicConv2d<B>,
    /// 3x3 stride-2 max pool.
    pub maxpool1: MaxPool2d,
    /// torchvision `Conv2d_3b_1x1`.
    pub conv2d_3b_1x1: BasicConv2d<B>,
    /// torchvision `Conv2d_4a_3x3`.
    pub conv2d_4a_3x3: BasicConv2d<B>,
    /// 3x3 stride-2 max pool.
    pub maxpool2: MaxPool2d,
    /// torchvision `Mixed_5b`.
    pub mixed_5b: InceptionA<B>,
    /// torchvision `Mixed_5c`.
    pub mixed_5c: InceptionA<B>,
    /// torchvision `Mixed_5d`.
    pub mixed_5d: InceptionA<B>,
    /// torchvision `Mixed_6a`.
    pub mixed_6a: InceptionB<B>,
    /// torchvision `Mixed_6b`.
    pub mixed_6b: InceptionC<B>,
    /// torchvision `Mixed_6c`.
    pub mixed_6c: InceptionC<B>,
    /// torchvision `Mixed_6d`.
    pub mixed_6d: InceptionC<B>,
    /// torchvision `Mixed_6e`.
    pub mixed_6e: InceptionC<B>,
    /// torchvision `Mixed_7a`.
    pub mixed_7a: InceptionD<B>,
    /// torchvision `Mixed_7b`.
    pub mixed_7b: InceptionE<B>,
    /// torchvision `Mixed_7c`.
    pub mixed_7c: InceptionE<B>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Whether input is re-normalised first (see [`InceptionV3Config::transform_input`]).
    pub transform_input: bool,
}

impl<B: Backend> InceptionV3<B> {
    /// torchvision's `_transform_input`: ImageNet normalisation to `(x - 0.5) / 0.5` per channel.
    fn transform(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if !self.transform_input {
            return x;
        }
        let device = x.device();
        let (mean, std) = ([0.485f64, 0.456, 0.406], [0.229f64, 0.224, 0.225]);
        // Constants in f64, rounded once to the backend's float type (as torch does).
        let constant = |values: Vec<f64>| {
            let data = TensorData::new(values, [1, 3, 1, 1]).convert::<B::FloatElem>();
            Tensor::<B, 4>::from_data(data, &device)
        };
        let scale = constant(std.iter().map(|s| s / 0.5).collect());
        let shift = constant(mean.iter().map(|m| (m - 0.5) / 0.5).collect());
        x * scale + shift
    }
}

impl<B: Backend> Backbone<B> for InceptionV3<B> {
    /// Output of `Mixed_7c` `[B, 2048, 8, 8]` at 299x299, with `cut` applied to its input.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let x = self.transform(images);
        let x = self.conv2d_1a_3x3.forward(x);
        let x = self.conv2d_2a_3x3.forward(x);
        let x = self.conv2d_2b_3x3.forward(x);
        let x = self.maxpool1.forward(x);
        let x = self.conv2d_3b_1x1.forward(x);
        let x = self.conv2d_4a_3x3.forward(x);
        let x = self.maxpool2.forward(x);
        let x = self.mixed_5b.forward(x);
        let x = self.mixed_5c.forward(x);
        let x = self.mixed_5d.forward(x);
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6b.forward(x);
        let x = self.mixed_6c.forward(x);
        let x = self.mixed_6d.forward(x);
        let x = self.mixed_6e.forward(x);
        let x = self.mixed_7a.forward(x);
        let x = self.mixed_7b.forward(x);
        self.mixed_7c.forward(cut(x))
    }

    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        super::backbone::cnn_both(self, images, cut, |spatial| self.pool(spatial))
    }
}

impl<B: Backend> InceptionV3<B> {
    /// Global average pool `[B, 2048]`.
    pub fn pool(&self, spatial: Tensor<B, 4>) -> Tensor<B, 2> {
        self.avgpool.forward(spatial).flatten(1, 3)
    }
}
