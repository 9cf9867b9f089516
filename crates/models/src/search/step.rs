//! The step-wise decoding contract between decoders and searches: a [`StepDecoder`] is driven
//! one step at a time by a [`Search`], which returns [`Hypothesis`]es; [`decode_rows`] is the
//! token-by-token loop greedy and sampling search share.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::decoder::{CaptionDecoder, DecodeState};

/// Decoded captions: token ids without `<sos>`, cut before `<eos>`, and their total log-probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// Token ids, `<eos>` excluded.
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the emitted tokens (`<eos>` included when emitted).
    pub log_prob: f64,
    /// Whether the caption emitted `<eos>` (false: cut at the search's `max_len`; a caption of
    /// exactly `max_len` words may have either).
    pub ended: bool,
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

/// A caption search (greedy, beam, sampling) driving a [`StepDecoder`].
pub trait Search {
    /// What the search returns for the `n` rows: one caption each, or the n-best of each.
    type Output;

    /// Decodes the `n` rows of `state`.
    fn run<B: Backend, D: StepDecoder<B>>(
        &self,
        decoder: &D,
        state: D::State,
        n: usize,
        device: &B::Device,
    ) -> Self::Output;

    /// Decodes every row of image `features` `[N, F]` with a caption decoder, from its start state.
    fn decode<B: Backend>(
        &self,
        decoder: &CaptionDecoder<B>,
        features: Tensor<B, 2>,
    ) -> Self::Output {
        let [n, _] = features.dims();
        let device = features.device();
        let state = decoder.start(features);
        self.run(decoder, state, n, &device)
    }
}

/// Token-by-token decoding of `n` rows from `state`, one token per row and step chosen by
/// `choose` (log-probabilities [N, V] → ids [N, 1]): at most `max_len` words, then one more step
/// in which only `<eos>` can end a caption; stops once every row emitted `<eos>`. Shared by greedy
/// and sampling search.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_rows<B: Backend, D: StepDecoder<B>>(
    decoder: &D,
    mut state: D::State,
    n: usize,
    device: &B::Device,
    sos: u32,
    eos: u32,
    max_len: usize,
    mut choose: impl FnMut(Tensor<B, 2>) -> Tensor<B, 2, Int>,
) -> Vec<Hypothesis> {
    let mut tokens: Tensor<B, 1, Int> =
        Tensor::from_data(TensorData::new(vec![sos as i64; n], [n]), device);
    let mut out: Vec<Hypothesis> = (0..n)
        .map(|_| Hypothesis {
            tokens: Vec::new(),
            log_prob: 0.0,
            ended: false,
        })
        .collect();
    let mut done = vec![false; n];
    for step in 0..=max_len {
        let (logp, next) = decoder.step(tokens, state);
        state = next;
        let choice = choose(logp.clone());
        let choice_logp = logp.gather(1, choice.clone());
        let ids: Vec<i64> = choice.clone().into_data().iter::<i64>().collect();
        let lps: Vec<f64> = choice_logp.into_data().iter::<f64>().collect();
        for i in 0..n {
            if done[i] {
                continue;
            }
            let id = ids[i] as u32;
            if id == eos {
                out[i].log_prob += lps[i];
                out[i].ended = true;
                done[i] = true;
            } else if step < max_len {
                out[i].log_prob += lps[i];
                out[i].tokens.push(id);
            } else {
                // A row that never emitted <eos> keeps max_len words.
                done[i] = true;
            }
        }
        if done.iter().all(|d| *d) {
            break;
        }
        tokens = choice.reshape([n]);
    }
    out
}

impl<B: Backend> StepDecoder<B> for CaptionDecoder<B> {
    type State = DecodeState<B>;

    fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: DecodeState<B>,
    ) -> (Tensor<B, 2>, DecodeState<B>) {
        CaptionDecoder::step(self, tokens, state)
    }

    fn select(&self, state: DecodeState<B>, indices: Tensor<B, 1, Int>) -> DecodeState<B> {
        state.select(indices)
    }
}
