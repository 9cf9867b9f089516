//! The losses the training step minimises: the teacher-forced cross-entropy of the reference
//! captions ([`caption_loss`], label-smoothed), and SCST's policy-gradient loss on sampled
//! captions ([`policy_loss`]), whose samples and advantages come from [`super::scst`].

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use caplab_data::vocab::Vocab;

/// Mean cross-entropy over non-`<pad>` targets (label-smoothed by `epsilon`), and how many
/// targets that is. With smoothing, each target's loss is `(1-ε)·(-log p_y) + ε·mean_v(-log p_v)`.
pub fn caption_loss<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    epsilon: f64,
) -> (Tensor<B, 1>, usize) {
    let [n, t, v] = logits.dims();
    // In bf16/f16 (CUDA `experiment.precision`) the log-softmax, the smoothing mean and the token
    // sums run in f32: the cast is tracked by autodiff (the gradient is cast back) and is a no-op
    // for f32 backends, so CPU numbers are unchanged.
    let logits = logits.cast(FloatDType::F32);
    let logp = log_softmax(logits.reshape([n * t, v]), 1);
    let targets = targets.reshape([n * t, 1]);
    let mut per_token = logp
        .clone()
        .gather(1, targets.clone())
        .reshape([n * t])
        .neg();
    if epsilon > 0.0 {
        let uniform = logp.mean_dim(1).reshape([n * t]).neg();
        per_token = per_token.mul_scalar(1.0 - epsilon) + uniform.mul_scalar(epsilon);
    }
    let mask = targets
        .reshape([n * t])
        .not_equal_elem(Vocab::PAD as i64)
        .float()
        .cast(FloatDType::F32);
    let tokens: f64 = mask.clone().sum().into_scalar_f64();
    let loss = (per_token * mask).sum().div_scalar(tokens.max(1.0));
    (loss, tokens as usize)
}

/// The value of a one-element tensor as `f64` (0 when empty).
pub trait IntoScalarF64 {
    /// The tensor's single value.
    fn into_scalar_f64(self) -> f64;
}

impl<B: Backend> IntoScalarF64 for Tensor<B, 1> {
    fn into_scalar_f64(self) -> f64 {
        self.into_data().iter::<f64>().next().unwrap_or(0.0)
    }
}

/// The SCST loss `−(1/N) Σᵢ Aᵢ Σₜ mᵢₜ log p(wᵢₜ)` from the decoder's logits on the sampled
/// captions (teacher-forced on them), its gradient flowing through the log-probabilities only.
///
/// - `logits`: `[N, T, V]`, the step-`t` distribution that produced token `wᵢₜ`;
/// - `tokens`: `[N, T]`, the sampled tokens;
/// - `mask`: `[N, T]` from [`sample_mask`];
/// - `advantages`: `[N]`, `rᵢ − bᵢ` (constants).
pub fn policy_loss<B: Backend>(
    logits: Tensor<B, 3>,
    tokens: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    advantages: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let [n, t, v] = logits.dims();
    // Half-precision runs take the log-softmax and the sums in f32 (a no-op for f32 backends).
    let logits = logits.cast(FloatDType::F32);
    let mask = mask.cast(FloatDType::F32);
    let advantages = advantages.cast(FloatDType::F32);
    let logp = log_softmax(logits.reshape([n * t, v]), 1)
        .gather(1, tokens.reshape([n * t, 1]))
        .reshape([n, t]);
    let per_sample = (logp * mask).sum_dim(1).reshape([n]);
    (per_sample * advantages).sum().neg().div_scalar(n as f64)
}

/// `[N, T]` float tensor from row-major values.
pub fn matrix<B: Backend>(
    values: Vec<f32>,
    n: usize,
    t: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values, [n, t]), device)
}
