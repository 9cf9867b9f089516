//! PyTorch's packed gate projections of one recurrent layer, shared by the LSTM and GRU cells.
//!
//! A layer with `G` gates (LSTM: 4, `i, f, g, o`; GRU: 3, `r, z, n`) and hidden size `H` holds
//! `torch.nn.LSTM`/`torch.nn.GRU`'s `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}` and
//! `bias_hh_l{k}`: the input and the hidden projection, each packed as one matrix with `G·H`
//! outputs, gate `j` in columns `j·H..(j + 1)·H` ([`chunk`]). The weights are stored transposed
//! w.r.t. PyTorch (`[I, G·H]`, `[H, G·H]`), like burn's `Linear`, so that the matmuls read them
//! row-major (faster on Flex); the importer ([`load_pytorch_rnn`](super::load_pytorch_rnn))
//! transposes them.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Configuration of a layer's [`PackedGates`].
#[derive(Config, Debug)]
pub struct PackedGatesConfig {
    /// Input feature size `I`.
    pub d_input: usize,
    /// Hidden size `H`.
    pub d_hidden: usize,
    /// Number of gates `G` packed along the outputs (LSTM 4, GRU 3).
    pub gates: usize,
}

impl PackedGatesConfig {
    /// Creates the projections with PyTorch's default initialisation, U(-1/√H, 1/√H) for every
    /// weight and bias.
    pub fn init<B: Backend>(&self, device: &B::Device) -> PackedGates<B> {
        let bound = 1.0 / (self.d_hidden as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let outputs = self.gates * self.d_hidden;
        PackedGates {
            weight_ih: init.init([self.d_input, outputs], device),
            weight_hh: init.init([self.d_hidden, outputs], device),
            bias_ih: init.init([outputs], device),
            bias_hh: init.init([outputs], device),
        }
    }
}

/// The packed input and hidden projections of one recurrent layer (PyTorch's parameters of
/// layer `k`, under their PyTorch names).
#[derive(Module, Debug)]
pub struct PackedGates<B: Backend> {
    /// Input-to-hidden weights `[I, G·H]` (PyTorch's `weight_ih_l{k}` transposed).
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Hidden-to-hidden weights `[H, G·H]` (PyTorch's `weight_hh_l{k}` transposed).
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input-to-hidden bias `[G·H]`.
    pub bias_ih: Param<Tensor<B, 1>>,
    /// Hidden-to-hidden bias `[G·H]`.
    pub bias_hh: Param<Tensor<B, 1>>,
}

impl<B: Backend> PackedGates<B> {
    /// Both projections and both biases, `x·W_ih + h·W_hh + (b_ih + b_hh)`: `x` `[B, I]`, `h`
    /// `[B, H]` → `[B, G·H]` (the LSTM's gates).
    pub fn project(&self, x: Tensor<B, 2>, h: Tensor<B, 2>) -> Tensor<B, 2> {
        let bias = (self.bias_ih.val() + self.bias_hh.val()).unsqueeze_dim(0);
        x.matmul(self.weight_ih.val()) + h.matmul(self.weight_hh.val()) + bias
    }

    /// The input projection `x·W_ih + b_ih`: `x` `[B, I]` → `[B, G·H]`.
    pub fn project_input(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight_ih.val()) + self.bias_ih.val().unsqueeze_dim(0)
    }

    /// The hidden projection `h·W_hh + b_hh`: `h` `[B, H]` → `[B, G·H]`.
    pub fn project_hidden(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        h.matmul(self.weight_hh.val()) + self.bias_hh.val().unsqueeze_dim(0)
    }
}

/// Gates `first..first + count` of packed projections `[B, G·H]`, for hidden size `d_hidden`:
/// `[B, count·H]`.
pub fn chunk<B: Backend>(
    packed: Tensor<B, 2>,
    first: usize,
    count: usize,
    d_hidden: usize,
) -> Tensor<B, 2> {
    packed.narrow(1, first * d_hidden, count * d_hidden)
}
