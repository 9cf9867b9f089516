//! The recurrent state of a multi-layer RNN: every layer's `h` and, for an LSTM, its `c`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

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
