//! Caption search over any step-wise decoder: greedy (beam and sampling come with the decoding issue).

pub mod greedy;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

pub use greedy::GreedySearch;

use crate::decoder::{CaptionDecoder, DecodeState};

/// Decoded captions: token ids without `<sos>`, cut before `<eos>`, and their total log-probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// Token ids, `<eos>` excluded.
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the emitted tokens (`<eos>` included when emitted).
    pub log_prob: f64,
}

/// A decoder that search algorithms drive one step at a time, for a whole batch of rows.
pub trait StepDecoder<B: Backend> {
    /// Whatever the decoder carries between steps (recurrent state, image features …).
    type State: Clone;
    /// Previous tokens [N] → log-probabilities [N, V] of the next token, and the next state.
    fn step(&self, tokens: Tensor<B, 1, Int>, state: Self::State) -> (Tensor<B, 2>, Self::State);
    /// Keeps (or repeats) the rows `indices` of a state, as beam search needs.
    fn select(&self, state: Self::State, indices: Tensor<B, 1, Int>) -> Self::State;
}

impl<B: Backend> StepDecoder<B> for CaptionDecoder<B> {
    type State = DecodeState<B>;

    fn step(&self, tokens: Tensor<B, 1, Int>, state: DecodeState<B>) -> (Tensor<B, 2>, DecodeState<B>) {
        CaptionDecoder::step(self, tokens, state)
    }

    fn select(&self, state: DecodeState<B>, indices: Tensor<B, 1, Int>) -> DecodeState<B> {
        state.select(indices)
    }
}
