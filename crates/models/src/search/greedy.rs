//! `GreedySearch`: batched arg-max decoding, one step for the whole batch at a time.

use burn::tensor::backend::Backend;

use super::step::{decode_rows, Hypothesis, Search, StepDecoder};

/// Batched greedy decoding with a maximum caption length.
#[derive(Clone, Debug)]
pub struct GreedySearch {
    /// Maximum number of words per caption (`<eos>` excluded).
    pub max_len: usize,
    /// Id of `<sos>`.
    pub sos: u32,
    /// Id of `<eos>`.
    pub eos: u32,
}

impl Search for GreedySearch {
    type Output = Vec<Hypothesis>;

    /// Decodes `n` rows from `state`; stops early once every row emitted `<eos>`.
    fn run<B: Backend, D: StepDecoder<B>>(
        &self,
        decoder: &D,
        state: D::State,
        n: usize,
        device: &B::Device,
    ) -> Vec<Hypothesis> {
        decode_rows(
            decoder,
            state,
            n,
            device,
            self.sos,
            self.eos,
            self.max_len,
            |logp| logp.argmax(1),
        )
    }
}
