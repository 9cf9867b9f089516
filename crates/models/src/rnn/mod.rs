//! Recurrent cells (LSTM, GRU) with PyTorch-packed gates.
//!
//! [`Rnn`] is numerically equivalent to `torch.nn.LSTM` / `torch.nn.GRU` with
//! `batch_first=True` given the same state_dict (see [`load_pytorch_rnn`]).

mod gru;
mod import;
pub(crate) use import::transpose_2d;
mod lstm;
mod stack;

pub use gru::GruLayer;
pub use import::load_pytorch_rnn;
pub use lstm::LstmLayer;
pub use stack::{RecurrentLayer, RnnStack};

/// Multi-layer LSTM (`torch.nn.LSTM` parameters).
pub type Lstm<B> = RnnStack<B, LstmLayer<B>>;
/// Multi-layer GRU (`torch.nn.GRU` parameters).
pub type Gru<B> = RnnStack<B, GruLayer<B>>;

use burn::config::Config;
use burn::module::Module;
use burn::nn::DropoutConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Kind of recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Long short-term memory (`torch.nn.LSTM`).
    Lstm,
    /// Gated recurrent unit (`torch.nn.GRU`).
    Gru,
}

/// Configuration of a multi-layer [`Rnn`].
#[derive(Config, Debug)]
pub struct RnnConfig {
    /// Cell kind.
    pub cell: CellKind,
    /// Input feature size `I`.
    pub d_input: usize,
    /// Hidden size `H`.
    pub d_hidden: usize,
    /// Number of stacked layers `L`.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Dropout probability between layers (training only), in `[0, 1]`.
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl RnnConfig {
    /// Builds the RNN with PyTorch's default initialisation; panics if `num_layers == 0`
    /// or `dropout` is outside `[0, 1]`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Rnn<B> {
        assert!(self.num_layers > 0, "RnnConfig: num_layers must be >= 1");
        assert!(
            (0.0..=1.0).contains(&self.dropout),
            "RnnConfig: dropout must be in [0, 1], got {}",
            self.dropout
        );
        let dropout = DropoutConfig::new(self.dropout).init();
        let (d_input, d_hidden, layers) = (self.d_input, self.d_hidden, self.num_layers);
        match self.cell {
            CellKind::Lstm => Rnn::Lstm(Lstm::new(d_input, d_hidden, layers, dropout, device)),
            CellKind::Gru => Rnn::Gru(Gru::new(d_input, d_hidden, layers, dropout, device)),
        }
    }
}

/// Multi-layer unidirectional LSTM or GRU with PyTorch parameter names.
#[derive(Module, Debug)]
pub enum Rnn<B: Backend> {
    /// LSTM cells.
    Lstm(Lstm<B>),
    /// GRU cells.
    Gru(Gru<B>),
}

/// Recurrent state: `h` `[layers, batch, hidden]` and, for LSTM only, the cell state `c`.
#[derive(Clone, Debug)]
pub struct RnnState<B: Backend> {
    /// Hidden state `[layers, batch, hidden]`.
    pub h: Tensor<B, 3>,
    /// Cell state `[layers, batch, hidden]` (LSTM only).
    pub c: Option<Tensor<B, 3>>,
}

impl<B: Backend> RnnState<B> {
    /// Gathers batch entries `indices` (along the batch dim), e.g. to reorder beams.
    pub fn select(self, indices: Tensor<B, 1, Int>) -> Self {
        let c = self.c.map(|c| c.select(1, indices.clone()));
        Self {
            h: self.h.select(1, indices),
            c,
        }
    }
}

impl<B: Backend> Rnn<B> {
    /// Runs `x` `[batch, time, d_input]` from `state` (zeros if `None`); returns the top
    /// layer's outputs `[batch, time, hidden]` and the final state.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        state: Option<RnnState<B>>,
    ) -> (Tensor<B, 3>, RnnState<B>) {
        let [batch, _, _] = x.dims();
        let state = state.unwrap_or_else(|| self.zero_state(batch, &x.device()));
        // Time-major inside: each step then reads a contiguous block of rows.
        let x = x.swap_dims(0, 1);
        let (output, state) = match self {
            Rnn::Lstm(lstm) => lstm.forward(x, state),
            Rnn::Gru(gru) => gru.forward(x, state),
        };
        (output.swap_dims(0, 1), state)
    }

    /// Advances one time step: `x` `[batch, d_input]`; returns the top layer's `h`
    /// `[batch, hidden]` and the new state. Same numerics as [`Rnn::forward`].
    pub fn step(&self, x: Tensor<B, 2>, state: Option<RnnState<B>>) -> (Tensor<B, 2>, RnnState<B>) {
        let [batch, _] = x.dims();
        let state = state.unwrap_or_else(|| self.zero_state(batch, &x.device()));
        match self {
            Rnn::Lstm(lstm) => lstm.step(x, state),
            Rnn::Gru(gru) => gru.step(x, state),
        }
    }

    /// All-zero initial state for `batch` sequences (`c` is `Some` for LSTM only).
    pub fn zero_state(&self, batch: usize, device: &B::Device) -> RnnState<B> {
        let h = Tensor::zeros([self.num_layers(), batch, self.d_hidden()], device);
        let c = match self {
            Rnn::Lstm(_) => Some(h.zeros_like()),
            Rnn::Gru(_) => None,
        };
        RnnState { h, c }
    }

    /// Cell kind of this RNN.
    pub fn cell(&self) -> CellKind {
        match self {
            Rnn::Lstm(_) => CellKind::Lstm,
            Rnn::Gru(_) => CellKind::Gru,
        }
    }

    /// Hidden size `H`.
    pub fn d_hidden(&self) -> usize {
        match self {
            Rnn::Lstm(lstm) => lstm.d_hidden,
            Rnn::Gru(gru) => gru.d_hidden,
        }
    }

    /// Number of stacked layers `L`.
    pub fn num_layers(&self) -> usize {
        match self {
            Rnn::Lstm(lstm) => lstm.layers.len(),
            Rnn::Gru(gru) => gru.layers.len(),
        }
    }
}
