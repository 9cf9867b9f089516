//! [`Rnn`]: the multi-layer unidirectional LSTM or GRU a spec names ([`RnnConfig`]), numerically
//! equivalent to `torch.nn.LSTM` / `torch.nn.GRU` with `batch_first=True` given the same
//! state_dict (see [`load_pytorch_rnn`](super::load_pytorch_rnn)).

use burn::config::Config;
use burn::module::Module;
use burn::nn::DropoutConfig;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::gru::GruCell;
use super::lstm::LstmCell;
use super::stack::RnnStack;
use super::state::RnnState;

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
            CellKind::Lstm => Rnn::Lstm(RnnStack::new::<LstmCell>(
                d_input, d_hidden, layers, dropout, device,
            )),
            CellKind::Gru => Rnn::Gru(RnnStack::new::<GruCell>(
                d_input, d_hidden, layers, dropout, device,
            )),
        }
    }
}

/// Multi-layer unidirectional LSTM or GRU with PyTorch parameter names.
#[derive(Module, Debug)]
pub enum Rnn<B: Backend> {
    /// LSTM cells ([`LstmCell`]).
    Lstm(RnnStack<B>),
    /// GRU cells ([`GruCell`]).
    Gru(RnnStack<B>),
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
            Rnn::Lstm(lstm) => lstm.forward::<LstmCell>(x, state),
            Rnn::Gru(gru) => gru.forward::<GruCell>(x, state),
        };
        (output.swap_dims(0, 1), state)
    }

    /// Advances one time step: `x` `[batch, d_input]`; returns the top layer's `h`
    /// `[batch, hidden]` and the new state. Same numerics as [`Rnn::forward`].
    pub fn step(&self, x: Tensor<B, 2>, state: Option<RnnState<B>>) -> (Tensor<B, 2>, RnnState<B>) {
        let [batch, _] = x.dims();
        let state = state.unwrap_or_else(|| self.zero_state(batch, &x.device()));
        match self {
            Rnn::Lstm(lstm) => lstm.step::<LstmCell>(x, state),
            Rnn::Gru(gru) => gru.step::<GruCell>(x, state),
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
