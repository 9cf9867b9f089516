//! The GRU cell (`torch.nn.GRU`'s equations) on a layer's [`PackedGates`], gate order `r, z, n`.
//!
//! `r = σ(x·W_ir + b_ir + h·W_hr + b_hr)`, `z = σ(x·W_iz + b_iz + h·W_hz + b_hz)`,
//! `n = tanh(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`: the input and
//! hidden projections are kept apart ([`PackedGates::project_input`],
//! [`PackedGates::project_hidden`]) since `r` scales the hidden part of `n` only.

use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::cell::RecurrentCell;
use super::gates::{chunk, PackedGates};
use crate::activation::tanh;

/// Gated recurrent unit: 3 packed gates, no cell state.
#[derive(Clone, Copy, Debug, Default)]
pub struct GruCell;

impl RecurrentCell for GruCell {
    const GATES: usize = 3;

    /// One step: `x` `[B, I]`, `h` `[B, H]` -> the new `h` (no `c`).
    fn step<B: Backend>(
        gates: &PackedGates<B>,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        _c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let gates_x = gates.project_input(x);
        let d_hidden = h.dims()[1];
        let gates_h = gates.project_hidden(h.clone());
        let reset_update = sigmoid(
            chunk(gates_x.clone(), 0, 2, d_hidden) + chunk(gates_h.clone(), 0, 2, d_hidden),
        );
        let reset = chunk(reset_update.clone(), 0, 1, d_hidden);
        let update = chunk(reset_update, 1, 1, d_hidden);
        let new_gate =
            tanh(chunk(gates_x, 2, 1, d_hidden) + reset * chunk(gates_h, 2, 1, d_hidden));
        // h' = (1 - z) ⊙ n + z ⊙ h, written as n + z ⊙ (h - n).
        (new_gate.clone() + update * (h - new_gate), None)
    }
}
