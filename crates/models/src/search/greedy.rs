//! `GreedySearch`: batched arg-max decoding, one step for the whole batch at a time.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{decode_rows, Hypothesis, StepDecoder};
use crate::decoder::CaptionDecoder;

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

impl GreedySearch {
    /// Decodes every row of image `features` [N, F] with a caption decoder.
    pub fn decode<B: Backend>(
        &self,
        decoder: &CaptionDecoder<B>,
        features: Tensor<B, 2>,
    ) -> Vec<Hypothesis> {
        let [n, _] = features.dims();
        let device = features.device();
        let state = decoder.start(features);
        self.run(decoder, state, n, &device)
    }

    /// Decodes `n` rows from `state`; stops early once every row emitted `<eos>`.
    pub fn run<B: Backend, D: StepDecoder<B>>(
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
