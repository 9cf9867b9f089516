//! The recurrent cell a layer of packed gates runs: LSTM ([`LstmCell`](super::LstmCell)) or GRU
//! ([`GruCell`](super::GruCell)), one time step or a whole sequence.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::gates::PackedGates;

/// A recurrent cell: how many gates its layers pack and its update on one time step. `c` is the
/// LSTM cell state, `None` for cells without one.
pub trait RecurrentCell {
    /// Number of gates `G` packed in each layer's projections.
    const GATES: usize;

    /// Advances one time step with the layer's `gates`: `x` `[B, I]`, `h` (and `c`) `[B, H]` (an
    /// absent `c` of an LSTM is zeros); returns the new `h` (and `c`).
    fn step<B: Backend>(
        gates: &PackedGates<B>,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>);

    /// Runs a time-major sequence `x` `[T, B, I]` through the layer's `gates` from `h` (and `c`)
    /// `[B, H]`; returns the outputs `[T, B, H]` and the final `h` (and `c`) `[B, H]`.
    ///
    /// Each step projects its own input slice `x[t]` `[B, I]`. Hoisting the projection of all
    /// steps into one `[T·B, G·H]` matmul (PyTorch's CPU kernel) is slower under burn's
    /// autodiff: the backward of each step's slice of that product allocates a zero gradient
    /// of the whole product, writes the slice into it and adds it to the others, T times per
    /// sequence (for `just bench train`, 21 buffers of 27 MB per layer and step). Slicing the
    /// input instead costs `[T, B, I]`-sized buffers, G·H/I times smaller. Sequence and
    /// step-by-step decoding run the same arithmetic, so their outputs are identical.
    fn forward<B: Backend>(
        gates: &PackedGates<B>,
        x: Tensor<B, 3>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let time = x.dims()[0];
        let (mut h, mut c) = (h, c);
        let mut outputs = Vec::with_capacity(time);
        for t in 0..time {
            let x_t = x.clone().narrow(0, t, 1).squeeze_dim(0);
            (h, c) = Self::step(gates, x_t, h, c);
            outputs.push(h.clone());
        }
        (Tensor::stack(outputs, 0), h, c)
    }
}
