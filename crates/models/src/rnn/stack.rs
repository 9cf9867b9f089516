//! The multi-layer stack shared by LSTM and GRU: layers bottom first, dropout between them.

use std::marker::PhantomData;

use burn::module::{Initializer, Module, Param};
use burn::nn::Dropout;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::RnnState;

/// One recurrent layer with PyTorch-packed gates ([`LstmLayer`](super::LstmLayer),
/// [`GruLayer`](super::GruLayer)); `c` is the LSTM cell state, `None` for cells without one.
///
/// A layer provides its cell update on one time step; the sequence forward runs it once per
/// step on that step's slice of the input (see [`RecurrentLayer::forward`] for why the input
/// projection is not hoisted out of the loop).
pub trait RecurrentLayer<B: Backend>: Module<B> {
    /// Creates a layer with PyTorch's default initialisation U(-1/√H, 1/√H) (see [`packed_params`]).
    fn init(d_input: usize, d_hidden: usize, device: &B::Device) -> Self;

    /// Advances one time step: `x` `[B, I]`, `h` (and `c`) `[B, H]` (an absent `c` of an LSTM is
    /// zeros); returns the new `h` (and `c`).
    fn step(
        &self,
        x: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>);

    /// Runs a time-major sequence `x` `[T, B, I]` from `h` (and `c`) `[B, H]`; returns the
    /// outputs `[T, B, H]` and the final `h` (and `c`) `[B, H]`.
    ///
    /// Each step projects its own input slice `x[t]` `[B, I]`. Hoisting the projection of all
    /// steps into one `[T·B, G·H]` matmul (PyTorch's CPU kernel) is slower under burn's
    /// autodiff: the backward of each step's slice of that product allocates a zero gradient
    /// of the whole product, writes the slice into it and adds it to the others, T times per
    /// sequence (for `just bench train`, 21 buffers of 27 MB per layer and step). Slicing the
    /// input instead costs `[T, B, I]`-sized buffers, G·H/I times smaller. Sequence and
    /// step-by-step decoding run the same arithmetic, so their outputs are identical.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let time = x.dims()[0];
        let (mut h, mut c) = (h, c);
        let mut outputs = Vec::with_capacity(time);
        for t in 0..time {
            let x_t = x.clone().narrow(0, t, 1).squeeze_dim(0);
            (h, c) = self.step(x_t, h, c);
            outputs.push(h.clone());
        }
        (Tensor::stack(outputs, 0), h, c)
    }
}

/// Packed-gate parameters `weight_ih` `[I, G·H]`, `weight_hh` `[H, G·H]`, `bias_ih`, `bias_hh`
/// `[G·H]` for `gates` gates, initialised like PyTorch: U(-1/√H, 1/√H).
#[allow(clippy::type_complexity)]
pub(crate) fn packed_params<B: Backend>(
    d_input: usize,
    d_hidden: usize,
    gates: usize,
    device: &B::Device,
) -> (
    Param<Tensor<B, 2>>,
    Param<Tensor<B, 2>>,
    Param<Tensor<B, 1>>,
    Param<Tensor<B, 1>>,
) {
    let bound = 1.0 / (d_hidden as f64).sqrt();
    let init = Initializer::Uniform {
        min: -bound,
        max: bound,
    };
    (
        init.init([d_input, gates * d_hidden], device),
        init.init([d_hidden, gates * d_hidden], device),
        init.init([gates * d_hidden], device),
        init.init([gates * d_hidden], device),
    )
}

/// Multi-layer unidirectional RNN of layers `L`; dropout is applied between layers while training.
#[derive(Module, Debug)]
pub struct RnnStack<B: Backend, L: Module<B>> {
    /// Stacked layers, bottom first (PyTorch `*_l{k}`).
    pub layers: Vec<L>,
    /// Dropout on the outputs of every layer but the last.
    pub dropout: Dropout,
    /// Hidden size `H`.
    pub d_hidden: usize,
    _backend: PhantomData<B>,
}

impl<B: Backend, L: RecurrentLayer<B>> RnnStack<B, L> {
    /// Creates `num_layers` layers (the first reads `d_input` features, the others `d_hidden`).
    pub fn new(
        d_input: usize,
        d_hidden: usize,
        num_layers: usize,
        dropout: Dropout,
        device: &B::Device,
    ) -> Self {
        let layers = (0..num_layers)
            .map(|k| L::init(if k == 0 { d_input } else { d_hidden }, d_hidden, device))
            .collect();
        Self {
            layers,
            dropout,
            d_hidden,
            _backend: PhantomData,
        }
    }

    /// Runs a time-major sequence `x` `[T, B, I]` from `state` (`[L, B, H]` each); returns the
    /// top layer's outputs `[T, B, H]` and the final state.
    pub fn forward(&self, x: Tensor<B, 3>, state: RnnState<B>) -> (Tensor<B, 3>, RnnState<B>) {
        self.run(x, state, |layer, input, h, c| layer.forward(input, h, c))
    }

    /// Advances one time step: `x` `[B, I]`, `state` `[L, B, H]`; returns the top layer's `h`
    /// `[B, H]` and the new state.
    pub fn step(&self, x: Tensor<B, 2>, state: RnnState<B>) -> (Tensor<B, 2>, RnnState<B>) {
        self.run(x, state, |layer, input, h, c| {
            let (h, c) = layer.step(input, h, c);
            (h.clone(), h, c)
        })
    }

    /// Feeds `x` up the stack with `layer_fn(layer, input, h_k, c_k) -> (output, h_k', c_k')`.
    fn run<const D: usize>(
        &self,
        x: Tensor<B, D>,
        state: RnnState<B>,
        layer_fn: impl Fn(
            &L,
            Tensor<B, D>,
            Tensor<B, 2>,
            Option<Tensor<B, 2>>,
        ) -> (Tensor<B, D>, Tensor<B, 2>, Option<Tensor<B, 2>>),
    ) -> (Tensor<B, D>, RnnState<B>) {
        let mut input = x;
        let mut hs = Vec::with_capacity(self.layers.len());
        let mut cs = Vec::with_capacity(self.layers.len());
        for (k, layer) in self.layers.iter().enumerate() {
            if k > 0 {
                input = self.dropout.forward(input);
            }
            let c = state.c.as_ref().map(|c| layer_state(c, k));
            let (output, h, c) = layer_fn(layer, input, layer_state(&state.h, k), c);
            input = output;
            hs.push(h);
            cs.push(c);
        }
        let c = cs
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|cs| Tensor::stack(cs, 0));
        let h = Tensor::stack(hs, 0);
        (input, RnnState { h, c })
    }
}

/// The `[B, H]` slice of layer `k` from a stacked state `[L, B, H]`.
fn layer_state<B: Backend>(state: &Tensor<B, 3>, k: usize) -> Tensor<B, 2> {
    state.clone().narrow(0, k, 1).squeeze_dim(0)
}
