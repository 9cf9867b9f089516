//! Recurrent cells (LSTM, GRU) with PyTorch-packed gates.
//!
//! [`Rnn`] is numerically equivalent to `torch.nn.LSTM` / `torch.nn.GRU` with
//! `batch_first=True` given the same state_dict (see [`load_pytorch_rnn`]). Its layers are
//! [`PackedGates`] (PyTorch's `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`) stacked by
//! [`RnnStack`] and run by an [`LstmCell`] or a [`GruCell`] ([`RecurrentCell`]).

mod cell;
mod gates;
mod gru;
mod import;
mod lstm;
mod multilayer;
mod stack;
mod state;

pub use cell::RecurrentCell;
pub use gates::{PackedGates, PackedGatesConfig};
pub use gru::GruCell;
pub use import::load_pytorch_rnn;
pub use lstm::LstmCell;
pub use multilayer::{CellKind, Rnn, RnnConfig};
pub use stack::RnnStack;
pub use state::RnnState;
