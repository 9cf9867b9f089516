//! LSTM layer with PyTorch-packed gates (`i, f, g, o`); stacked by [`RnnStack`](super::RnnStack).
//!
//! Parameters mirror `torch.nn.LSTM` (`layers.{k}.weight_ih` is PyTorch's `weight_ih_l{k}`):
//! layer `k` holds `weight_ih` `[I, 4H]`, `weight_hh` `[H, 4H]`, `bias_ih` `[4H]` and
//! `bias_hh` `[4H]`. Weights are stored transposed w.r.t. PyTorch, like burn's `Linear`, so
//! the matmuls read them row-major (faster on Flex); the importer transposes them.
//! Each step computes `x·W_ih + h·W_hh + b_ih + b_hh` (`[B, 4H]`), then the gates.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::stack::packed_params;
use super::RecurrentLayer;
use crate::activation::tanh;

/// Number of packed gates in an LSTM layer.
const GATES: usize = 4;

/// One LSTM layer with packed gate weights (gate order `i, f, g, o` along the last dim).
#[derive(Module, Debug)]
pub struct LstmLayer<B: Backend> {
    /// Input-to-hidden weights `[d_in, 4H]` (PyTorch's `weight_ih_l{k}` transposed).
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Hidden-to-hidden weights `[H, 4H]` (PyTorch's `weight_hh_l{k}` transposed).
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input-to-hidden bias `[4H]`.
    pub bias_ih: Param<Tensor<B, 1>>,
    /// Hidden-to-hidden bias `[4H]`.
    pub bias_hh: Param<Tensor<B, 1>>,
}

impl<B: Backend> RecurrentLayer<B> for LstmLayer<B> {
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

    /// One step: `x` `[B, I]`, `h`, `c` `[B, H]` (no `c`: zeros) -> the new `h`, `c`.
    fn step(
        &self,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let c = c.unwrap_or_else(|| h.zeros_like());
        let d_hidden = c.dims()[1];
        let bias = (self.bias_ih.val() + self.bias_hh.val()).unsqueeze_dim(0);
        let gates = x.matmul(self.weight_ih.val()) + h.matmul(self.weight_hh.val()) + bias;
        let gate = |k: usize| gates.clone().narrow(1, k * d_hidden, d_hidden);
        let input_gate = sigmoid(gate(0));
        let forget_gate = sigmoid(gate(1));
        let candidate = tanh(gate(2));
        let output_gate = sigmoid(gate(3));
        let c = forget_gate * c + input_gate * candidate;
        let h = output_gate * tanh(c.clone());
        (h, Some(c))
    }
}
