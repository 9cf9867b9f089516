//! `BatchNorm`: torchvision's `BatchNorm2d`, batch normalisation of `[N, C, H, W]` feature maps.
//!
//! Same name, parameters, records and torchvision keys as `burn::nn::BatchNorm` (burn-store's
//! PyTorch adapter renames by that module name: `gamma` is
//! `weight`, `beta` is `bias`; `running_mean`, `running_var`), computed the way PyTorch's CPU
//! kernel does: per channel `α = γ / √(σ² + ε)` and `β' = β − μ·α`, then `y = x·α + β'`.
//! While autodiff is on, `μ` and `σ²` (biased) come from the batch and the running statistics
//! move by `momentum` towards them, with the unbiased variance as PyTorch keeps it; otherwise
//! the running statistics are used.
//!
//! Why not burn's module: it broadcasts `[1, C, 1, 1]` statistics over `[N, C, H, W]`, which
//! burn's CPU backend (Flex 0.21) runs element by element through its generic strided
//! iterator, forward and backward. Here every per-channel value is first repeated to
//! `[N, C, 1]` against the `[N, C, H·W]` view, a "scalar per row" broadcast that Flex runs
//! with SIMD. One epoch of `experiments/baseline.toml` (resnet_tiny trained end to end) went
//! from 36 s to 21–23 s with it (README, "CPU speed").

use burn::config::Config;
use burn::module::{Initializer, Module, Param, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::flex::{cast, is_cpu_train, CpuTrain};

/// Configuration of a [`BatchNorm`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Channels `C`.
    pub num_features: usize,
    /// `ε` added to the variance (torchvision: 1e-5; Inception v3: 1e-3).
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the new batch statistics in the running ones.
    #[config(default = 0.1)]
    pub momentum: f64,
}

/// Batch normalisation over the channels of `[N, C, H, W]` inputs.
#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    /// Scale `γ` `[C]` (torchvision `weight`).
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift `β` `[C]` (torchvision `bias`).
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean `[C]`.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (unbiased) variance `[C]`.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Weight of the new batch statistics in the running ones.
    pub momentum: f64,
    /// `ε` added to the variance.
    pub epsilon: f64,
}

impl BatchNormConfig {
    /// `γ = 1`, `β = 0`, running mean 0 and variance 1, as PyTorch initialises them.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BatchNorm<B> {
        let c = self.num_features;
        BatchNorm {
            gamma: Initializer::Ones.init([c], device),
            beta: Initializer::Zeros.init([c], device),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

impl<B: Backend> BatchNorm<B> {
    /// Normalises `x` `[N, C, H, W]` -> `[N, C, H, W]`: with the batch's statistics (and an
    /// update of the running ones) while autodiff is on, else with the running statistics.
    /// Training on `Autodiff<Flex>` runs the parallel kernel of [`super::batch_norm_cpu`].
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let x = x.reshape([n, c, h * w]);
        if is_cpu_train::<B>() {
            let device = x.device();
            let (Ok(xt), Ok(gamma), Ok(beta)) = (
                cast::<_, Tensor<CpuTrain, 3>>(x),
                cast(self.gamma.val()),
                cast(self.beta.val()),
            ) else {
                unreachable!("B is Autodiff<Flex>")
            };
            let (y, stats) = super::batch_norm_cpu::train(xt, gamma, beta, self.epsilon);
            let Ok(y) = cast::<_, Tensor<B, 3>>(y) else {
                unreachable!("B is Autodiff<Flex>")
            };
            let mean = Tensor::<B, 1>::from_data(TensorData::new(stats.mean, [c]), &device);
            let var = Tensor::<B, 1>::from_data(TensorData::new(stats.var, [c]), &device);
            self.update_running(mean, var, n * h * w);
            return y.reshape([n, c, h, w]);
        }
        self.forward_generic(x).reshape([n, c, h, w])
    }

    /// [`forward`](Self::forward) on `[N, C, L]` built from burn ops, for every backend.
    fn forward_generic(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, c, _] = x.dims();
        let (mean, var) = if B::ad_enabled(&x.device()) {
            self.batch_statistics(x.clone())
        } else {
            let device = x.device();
            (
                self.running_mean
                    .value()
                    .to_device(&device)
                    .reshape([1, c, 1]),
                self.running_var
                    .value()
                    .to_device(&device)
                    .reshape([1, c, 1]),
            )
        };
        let alpha =
            self.gamma.val().reshape([1, c, 1]) * var.add_scalar(self.epsilon).sqrt().recip();
        let shift = self.beta.val().reshape([1, c, 1]) - mean * alpha.clone();
        // [N, C, 1] per-row scalars against [N, C, H·W]: Flex's SIMD broadcast path.
        x * alpha.repeat_dim(0, n) + shift.repeat_dim(0, n)
    }

    /// Batch mean and biased variance `[1, C, 1]` of `x` `[N, C, L]`; moves the running
    /// statistics towards them.
    fn batch_statistics(&self, x: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [n, c, l] = x.dims();
        let count = (n * l) as f64;
        let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(count);
        let centered = x - mean.clone().repeat_dim(0, n);
        let var = centered.square().sum_dim(2).sum_dim(0).div_scalar(count);
        self.update_running(
            mean.clone().detach().reshape([c]),
            var.clone().detach().reshape([c]),
            n * l,
        );
        (mean, var)
    }

    /// Moves the running statistics by `momentum` towards a batch's mean and biased variance
    /// `[C]` over `count` values (the variance unbiased, as PyTorch keeps it).
    fn update_running(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, count: usize) {
        let count = count as f64;
        let unbiased = if count > 1.0 {
            count / (count - 1.0)
        } else {
            1.0
        };
        let device = mean.device();
        let m = self.momentum;
        let running_mean = self
            .running_mean
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - m)
            + mean.detach().mul_scalar(m);
        let running_var = self
            .running_var
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - m)
            + var.detach().mul_scalar(m * unbiased);
        self.running_mean.update(running_mean.detach());
        self.running_var.update(running_var.detach());
    }
}

#[cfg(test)]
mod tests {
    use super::super::flex::assert_close;
    use super::*;
    use burn::tensor::Distribution;

    /// A batch norm over 3 channels with `γ`, `β` away from 1 and 0.
    fn module(device: &burn::backend::flex::FlexDevice) -> BatchNorm<CpuTrain> {
        let mut bn = BatchNormConfig::new(3).with_epsilon(1e-3).init(device);
        bn.gamma = Param::from_data([0.5f32, 1.5, -2.0], device);
        bn.beta = Param::from_data([0.1f32, -0.3, 2.0], device);
        bn
    }

    fn values<const D: usize>(t: Tensor<burn::backend::Flex, D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn batch_norm_cpu_matches_the_generic_path() {
        let device = Default::default();
        CpuTrain::seed(&device, 11);
        let x =
            Tensor::<CpuTrain, 4>::random([5, 3, 4, 7], Distribution::Normal(2.0, 3.0), &device);
        let weights = Tensor::<CpuTrain, 4>::random([5, 3, 4, 7], Distribution::Default, &device);
        let run = |ours: bool| {
            let bn = module(&device);
            let x = x.clone().require_grad();
            let y = if ours {
                bn.forward(x.clone())
            } else {
                bn.forward_generic(x.clone().reshape([5, 3, 28]))
                    .reshape([5, 3, 4, 7])
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            [
                values(y.inner()),
                values(x.grad(&grads).expect("x gradient")),
                values(bn.gamma.grad(&grads).expect("gamma gradient")),
                values(bn.beta.grad(&grads).expect("beta gradient")),
                values(bn.running_mean.value_sync().inner()),
                values(bn.running_var.value_sync().inner()),
            ]
        };
        let (ours, generic) = (run(true), run(false));
        let names = [
            "output",
            "x gradient",
            "γ gradient",
            "β gradient",
            "running mean",
            "running variance",
        ];
        for ((a, b), name) in ours.iter().zip(&generic).zip(names) {
            assert_close(a, b, 1e-5, name);
        }
        // The running statistics moved from (0, 1).
        assert!(
            ours[4].iter().all(|&m| m > 0.1),
            "running mean {:?}",
            ours[4]
        );
    }
}
