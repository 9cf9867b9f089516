//! VGG (Simonyan & Zisserman, 2015, "Very Deep Convolutional Networks for Large-Scale Image Recognition").
//!
//! `features` and `classifier` mirror torchvision's `nn.Sequential` index by index (parameter-free
//! layers included), so `features.0.weight` and `classifier.3.weight` map by name. The classifier
//! stops after fc7's ReLU (`classifier.4`): the 1000-class `classifier.6` is not built. Only the
//! pooled feature (fc7) needs the classifier; [`VggConfig::classifier`] `= false` leaves it out,
//! and that network yields only its spatial grid.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::backbone::Backbone;
use super::batch_norm::{BatchNorm, BatchNormConfig};

/// Batch norm epsilon of torchvision's VGG.
const BN_EPS: f64 = 1e-5;

/// Configuration of a [`Vgg`]: five stages of 3x3 convolutions, each closed by a 2x2 max pool.
#[derive(Config, Debug)]
pub struct VggConfig {
    /// Convolutions per stage: `[1, 1, 2, 2, 2]` is VGG-11 ("A"), `[2, 2, 3, 3, 3]` VGG-16 ("D").
    pub convs_per_stage: [usize; 5],
    /// Whether each convolution is followed by batch norm (`vgg*_bn`).
    pub batch_norm: bool,
    /// Output channels of each stage.
    #[config(default = "[64, 128, 256, 512, 512]")]
    pub widths: [usize; 5],
    /// Width of fc6 and fc7.
    #[config(default = 4096)]
    pub hidden: usize,
    /// Dropout after fc6 and fc7 (active only under autodiff).
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Whether to build `classifier[:5]` (fc6 and fc7, 25088×4096 and 4096×4096 weights), which
    /// only the pooled feature reads. Without it [`Vgg::pool`] and the pooled forwards panic.
    #[config(default = true)]
    pub classifier: bool,
}

impl VggConfig {
    /// torchvision `vgg11` / `vgg11_bn`.
    pub fn vgg11(batch_norm: bool) -> Self {
        Self::new([1, 1, 2, 2, 2], batch_norm)
    }

    /// torchvision `vgg13` / `vgg13_bn`.
    pub fn vgg13(batch_norm: bool) -> Self {
        Self::new([2, 2, 2, 2, 2], batch_norm)
    }

    /// torchvision `vgg16` / `vgg16_bn`.
    pub fn vgg16(batch_norm: bool) -> Self {
        Self::new([2, 2, 3, 3, 3], batch_norm)
    }

    /// torchvision `vgg19` / `vgg19_bn`.
    pub fn vgg19(batch_norm: bool) -> Self {
        Self::new([2, 2, 4, 4, 4], batch_norm)
    }

    /// Builds the network with torchvision's initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Vgg<B> {
        let mut features = Vec::new();
        let mut in_channels = 3;
        for (&convs, &width) in self.convs_per_stage.iter().zip(&self.widths) {
            for _ in 0..convs {
                let conv = Conv2dConfig::new([in_channels, width], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(Initializer::KaimingNormal {
                        gain: std::f64::consts::SQRT_2,
                        fan_out_only: true,
                    });
                features.push(VggFeature::Conv(conv.init(device)));
                if self.batch_norm {
                    let bn = BatchNormConfig::new(width).with_epsilon(BN_EPS);
                    features.push(VggFeature::BatchNorm(bn.init(device)));
                }
                features.push(VggFeature::Relu(Relu::new()));
                in_channels = width;
            }
            features.push(VggFeature::MaxPool(MaxPool2dConfig::new([2, 2]).init()));
        }
        let linear = |d_input, d_output| {
            LinearConfig::new(d_input, d_output)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                })
                .init(device)
        };
        let dropout = DropoutConfig::new(self.dropout).init();
        let classifier = if self.classifier {
            vec![
                VggClassifier::Linear(linear(in_channels * 7 * 7, self.hidden)),
                VggClassifier::Relu(Relu::new()),
                VggClassifier::Dropout(dropout.clone()),
                VggClassifier::Linear(linear(self.hidden, self.hidden)),
                VggClassifier::Relu(Relu::new()),
            ]
        } else {
            Vec::new()
        };
        Vgg {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            classifier,
        }
    }
}

/// One entry of VGG's `features` sequence.
#[derive(Module, Debug)]
pub enum VggFeature<B: Backend> {
    /// 3x3 convolution, padding 1.
    Conv(Conv2d<B>),
    /// Batch norm (`_bn` variants only).
    BatchNorm(BatchNorm<B>),
    /// ReLU.
    Relu(Relu),
    /// 2x2 stride-2 max pool.
    MaxPool(MaxPool2d),
}

impl<B: Backend> VggFeature<B> {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            VggFeature::Conv(conv) => super::conv::forward(conv, x),
            VggFeature::BatchNorm(bn) => bn.forward(x),
            VggFeature::Relu(relu) => relu.forward(x),
            VggFeature::MaxPool(pool) => pool.forward(x),
        }
    }
}

/// One entry of VGG's `classifier` sequence (up to fc7's ReLU).
#[derive(Module, Debug)]
// Module trees are built once and moved rarely; burn's Module derive has no `Box` support.
#[allow(clippy::large_enum_variant)]
pub enum VggClassifier<B: Backend> {
    /// fc6 or fc7.
    Linear(Linear<B>),
    /// ReLU.
    Relu(Relu),
    /// Dropout.
    Dropout(Dropout),
}

impl<B: Backend> VggClassifier<B> {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            VggClassifier::Linear(linear) => linear.forward(x),
            VggClassifier::Relu(relu) => relu.forward(x),
            VggClassifier::Dropout(dropout) => dropout.forward(x),
        }
    }
}

/// VGG trunk, with fc6 and fc7 unless built without them ([`VggConfig::classifier`]).
#[derive(Module, Debug)]
pub struct Vgg<B: Backend> {
    /// torchvision `features`: convolutions, batch norms, ReLUs and max pools.
    pub features: Vec<VggFeature<B>>,
    /// Adaptive average pool to 7x7.
    pub avgpool: AdaptiveAvgPool2d,
    /// torchvision `classifier[:5]`: fc6, ReLU, dropout, fc7, ReLU; empty when built without
    /// them.
    pub classifier: Vec<VggClassifier<B>>,
}

impl<B: Backend> Vgg<B> {
    /// Index of the first layer of the last (conv5) block: just after the fourth max pool.
    fn last_block_start(&self) -> usize {
        let mut pools = 0;
        for (i, layer) in self.features.iter().enumerate() {
            if matches!(layer, VggFeature::MaxPool(_)) {
                pools += 1;
                if pools == 4 {
                    return i + 1;
                }
            }
        }
        0
    }
}

impl<B: Backend> Backbone<B> for Vgg<B> {
    /// Output of `features[:-1]` (conv5 block before its max pool) `[B, 512, H/16, W/16]`, with
    /// `cut` applied to the input of the conv5 block.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let last = self.features.len().saturating_sub(1);
        let start = self.last_block_start().min(last);
        let x = self.features[..start]
            .iter()
            .fold(images, |x, layer| layer.forward(x));
        self.features[start..last]
            .iter()
            .fold(cut(x), |x, layer| layer.forward(x))
    }

    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        super::backbone::cnn_both(self, images, cut, |spatial| self.pool(spatial))
    }
}

impl<B: Backend> Vgg<B> {
    /// Whether fc6 and fc7 were built, i.e. whether [`Vgg::pool`] can run.
    pub fn has_classifier(&self) -> bool {
        !self.classifier.is_empty()
    }

    /// Prefixes of torchvision `state_dict` keys this network does not build beyond
    /// `classifier.6` (which no VGG here builds): `classifier.` without fc6 and fc7.
    pub fn unbuilt_prefixes(&self) -> &'static [&'static str] {
        if self.has_classifier() {
            &[]
        } else {
            &["classifier."]
        }
    }

    /// fc7 activations after ReLU `[B, 4096]`: conv5's max pool, average pool, fc6, fc7.
    ///
    /// # Panics
    ///
    /// If the network was built without fc6 and fc7 ([`VggConfig::classifier`] `= false`).
    pub fn pool(&self, spatial: Tensor<B, 4>) -> Tensor<B, 2> {
        assert!(
            self.has_classifier(),
            "this VGG was built without fc6/fc7 (VggConfig::classifier = false, \
             EncoderConfig::pooled_layers = false): it has no pooled feature, only the spatial grid"
        );
        let x = match self.features.last() {
            Some(pool) => pool.forward(spatial),
            None => spatial,
        };
        let x = self.avgpool.forward(x).flatten(1, 3);
        self.classifier.iter().fold(x, |x, layer| layer.forward(x))
    }
}
