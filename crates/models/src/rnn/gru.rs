//! GRU layer with PyTorch-packed gates (`r, z, n`); stacked by [`RnnStack`](super::RnnStack).
//!
//! Parameters mirror `torch.nn.GRU` (`layers.{k}.weight_ih` is PyTorch's `weight_ih_l{k}`):
//! layer `k` holds `weight_ih` `[I, 3H]`, `weight_hh` `[H, 3H]`, `bias_ih` `[3H]` and
//! `bias_hh` `[3H]`. Weights are stored transposed w.r.t. PyTorch, like burn's `Linear`;
//! the importer transposes them. Equations (PyTorch):
//! `r = σ(x·W_ir + b_ir + h·W_hr + b_hr)`, `z = σ(x·W_iz + b_iz + h·W_hz + b_hz)`,
//! `n = tanh(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.

use burn::module::{Initializer, Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::RecurrentLayer;

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
        let bound = 1.0 / (d_hidden as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        Self {
            weight_ih: init.init([d_input, GATES * d_hidden], device),
            weight_hh: init.init([d_hidden, GATES * d_hidden], device),
            bias_ih: init.init([GATES * d_hidden], device),
            bias_hh: init.init([GATES * d_hidden], device),
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        h0: Tensor<B, 2>,
        _c0: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let [time, batch, d_in] = x.dims();
        // One matmul for the input projection of all time steps: [T*B, 3H].
        let gates_x = self.input_projection(x.reshape([time * batch, d_in]));
        let mut h = h0;
        let mut outputs = Vec::with_capacity(time);
        for t in 0..time {
            let gates_t = gates_x.clone().narrow(0, t * batch, batch);
            h = self.cell(gates_t, h);
            outputs.push(h.clone());
        }
        (Tensor::stack(outputs, 0), h, None)
    }

    fn step(
        &self,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        _c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        (self.cell(self.input_projection(x), h), None)
    }
}

impl<B: Backend> GruLayer<B> {
    /// Input projection `x·W_ih + b_ih`, `[N, I] -> [N, 3H]` (`b_hh` stays inside `r ⊙ ·`).
    fn input_projection(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight_ih.val()) + self.bias_ih.val().unsqueeze_dim(0)
    }

    /// One cell update from the projected input `[B, 3H]` and the previous `h` `[B, H]`.
    fn cell(&self, gates_x: Tensor<B, 2>, h: Tensor<B, 2>) -> Tensor<B, 2> {
        let d_hidden = h.dims()[1];
        let gates_h = h.clone().matmul(self.weight_hh.val()) + self.bias_hh.val().unsqueeze_dim(0);
        let reset_update = sigmoid(
            gates_x.clone().narrow(1, 0, 2 * d_hidden) + gates_h.clone().narrow(1, 0, 2 * d_hidden),
        );
        let reset = reset_update.clone().narrow(1, 0, d_hidden);
        let update = reset_update.narrow(1, d_hidden, d_hidden);
        let new_gate = (gates_x.narrow(1, 2 * d_hidden, d_hidden)
            + reset * gates_h.narrow(1, 2 * d_hidden, d_hidden))
        .tanh();
        // h' = (1 - z) ⊙ n + z ⊙ h, written as n + z ⊙ (h - n).
        new_gate.clone() + update * (h - new_gate)
    }
}
