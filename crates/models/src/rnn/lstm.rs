//! The LSTM cell (`torch.nn.LSTM`'s equations) on a layer's [`PackedGates`], gate order
//! `i, f, g, o`.
//!
//! Each step computes the packed gates `x·W_ih + h·W_hh + b_ih + b_hh` (`[B, 4H]`, see
//! [`PackedGates::project`]), then `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')` with `i, f, o`
//! sigmoids and `g` a tanh.

use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::cell::RecurrentCell;
use super::gates::{chunk, PackedGates};
use crate::activation::tanh;

/// Long short-term memory cell: 4 packed gates and a cell state.
#[derive(Clone, Copy, Debug, Default)]
pub struct LstmCell;

impl RecurrentCell for LstmCell {
    const GATES: usize = 4;

    /// One step: `x` `[B, I]`, `h`, `c` `[B, H]` (no `c`: zeros) -> the new `h`, `c`.
    fn step<B: Backend>(
        gates: &PackedGates<B>,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let c = c.unwrap_or_else(|| h.zeros_like());
        let d_hidden = c.dims()[1];
        let packed = gates.project(x, h);
        let gate = |k: usize| chunk(packed.clone(), k, 1, d_hidden);
        let input_gate = sigmoid(gate(0));
        let forget_gate = sigmoid(gate(1));
        let candidate = tanh(gate(2));
        let output_gate = sigmoid(gate(3));
        let c = forget_gate * c + input_gate * candidate;
        let h = output_gate * tanh(c.clone());
        (h, Some(c))
    }
}
