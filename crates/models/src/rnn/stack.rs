//! The multi-layer stack shared by LSTM and GRU: layers of [`PackedGates`] bottom first,
//! dropout between them, run by a [`RecurrentCell`] type.

use std::marker::PhantomData;

use burn::module::Module;
use burn::nn::Dropout;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::cell::RecurrentCell;
use super::gates::{PackedGates, PackedGatesConfig};
use super::state::RnnState;

/// Multi-layer unidirectional RNN; dropout is applied between layers while training. The cell
/// ([`LstmCell`](super::LstmCell), [`GruCell`](super::GruCell)) is the type parameter `C` of
/// [`RnnStack::new`], [`RnnStack::forward`] and [`RnnStack::step`]: an [`Rnn`](super::Rnn)
/// variant names it once for all three.
#[derive(Module, Debug)]
pub struct RnnStack<B: Backend> {
    /// Stacked layers, bottom first (PyTorch `*_l{k}`).
    pub layers: Vec<PackedGates<B>>,
    /// Dropout on the outputs of every layer but the last.
    pub dropout: Dropout,
    /// Hidden size `H`.
    pub d_hidden: usize,
    /// An empty record entry, kept so that saved records keep the layout they had when the stack
    /// was generic over its layer type.
    _backend: PhantomData<B>,
}

impl<B: Backend> RnnStack<B> {
    /// Creates `num_layers` layers of cell `C` with PyTorch's default initialisation (the first
    /// reads `d_input` features, the others `d_hidden`).
    pub fn new<C: RecurrentCell>(
        d_input: usize,
        d_hidden: usize,
        num_layers: usize,
        dropout: Dropout,
        device: &B::Device,
    ) -> Self {
        let layers = (0..num_layers)
            .map(|k| {
                let d_in = if k == 0 { d_input } else { d_hidden };
                PackedGatesConfig::new(d_in, d_hidden, C::GATES).init(device)
            })
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
    pub fn forward<C: RecurrentCell>(
        &self,
        x: Tensor<B, 3>,
        state: RnnState<B>,
    ) -> (Tensor<B, 3>, RnnState<B>) {
        self.run(x, state, |layer, input, h, c| {
            C::forward(layer, input, h, c)
        })
    }

    /// Advances one time step: `x` `[B, I]`, `state` `[L, B, H]`; returns the top layer's `h`
    /// `[B, H]` and the new state.
    pub fn step<C: RecurrentCell>(
        &self,
        x: Tensor<B, 2>,
        state: RnnState<B>,
    ) -> (Tensor<B, 2>, RnnState<B>) {
        self.run(x, state, |layer, input, h, c| {
            let (h, c) = C::step(layer, input, h, c);
            (h.clone(), h, c)
        })
    }

    /// Feeds `x` up the stack with `layer_fn(layer, input, h_k, c_k) -> (output, h_k', c_k')`.
    fn run<const D: usize>(
        &self,
        x: Tensor<B, D>,
        state: RnnState<B>,
        layer_fn: impl Fn(
            &PackedGates<B>,
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
