//! GRU layer with PyTorch-packed gates (`r, z, n`); stacked by [`RnnStack`](super::RnnStack).
//!
//! Parameters mirror `torch.nn.GRU` (`layers.{k}.weight_ih` is PyTorch's `weight_ih_l{k}`):
//! layer `k` holds `weight_ih` `[I, 3H]`, `weight_hh` `[H, 3H]`, `bias_ih` `[3H]` and
//! `bias_hh` `[3H]`. Weights are stored transposed w.r.t. PyTorch, like burn's `Linear`;
//! the importer transposes them. Equations (PyTorch):
//! `r = σ(x·W_ir + b_ir + h·W_hr + b_hr)`, `z = σ(x·W_iz + b_iz + h·W_hz + b_hz)`,
//! `n = tanh(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::stack::packed_params;
use super::RecurrentLayer;
use crate::activation::tanh;

/// Number of packed gates in a GRU layer.
const GATES: usize = 3;

/// One GRU layer with packed gate weights (gate order `r, z, n` along the last dim).
#[derive(Module, Debug)]
pub struct GruLayer<B: Backend> {
    /// Input-to-hidden weights `[d_in, 3H]` (PyTorch's `weight_ih_l{k}` transposed).
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Hidden-to-hidden weights `[H, 3H]` (PyTorch's `weight_hh_l{k}` transposed).
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input-to-hidden bias `[3H]`.
    pub bias_ih: Param<Tensor<B, 1>>,
    /// Hidden-to-hidden bias `[3H]`.
    pub bias_hh: Param<Tensor<B, 1>>,
}

impl<B: Backend> RecurrentLayer<B> for GruLayer<B> {
    fn init(d_input: usize, d_hidden: usize, device: &B::Device) -> Self {
        let (weight_ih, weight_hh, bias_ih, bias_hh) =
            packed_params(d_input, d_hidden, GATES, device);
        Self {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        }
    }

    /// One step: `x` `[B, I]`, `h` `[B, H]` -> the new `h` (no `c`).
    fn step(
        &self,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        _c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let gates_x = x.matmul(self.weight_ih.val()) + self.bias_ih.val().unsqueeze_dim(0);
        let d_hidden = h.dims()[1];
        let gates_h = h.clone().matmul(self.weight_hh.val()) + self.bias_hh.val().unsqueeze_dim(0);
        let reset_update = sigmoid(
            gates_x.clone().narrow(1, 0, 2 * d_hidden) + gates_h.clone().narrow(1, 0, 2 * d_hidden),
        );
        let reset = reset_update.clone().narrow(1, 0, d_hidden);
        let update = reset_update.narrow(1, d_hidden, d_hidden);
        let new_gate = tanh(
            gates_x.narrow(1, 2 * d_hidden, d_hidden)
                + reset * gates_h.narrow(1, 2 * d_hidden, d_hidden),
        );
        // h' = (1 - z) ⊙ n + z ⊙ h, written as n + z ⊙ (h - n).
        (new_gate.clone() + update * (h - new_gate), None)
    }
}
