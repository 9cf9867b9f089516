//! `GreedySearch`: batched arg-max decoding, one step for the whole batch at a time.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::{Hypothesis, StepDecoder};
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
        mut state: D::State,
        n: usize,
        device: &B::Device,
    ) -> Vec<Hypothesis> {
        let mut tokens: Tensor<B, 1, Int> =
            Tensor::from_data(TensorData::new(vec![self.sos as i64; n], [n]), device);
        let mut out: Vec<Hypothesis> = (0..n)
            .map(|_| Hypothesis {
                tokens: Vec::new(),
                log_prob: 0.0,
            })
            .collect();
        let mut done = vec![false; n];
        // max_len words, then one more step in which only <eos> can end the caption.
        for step in 0..=self.max_len {
            let (logp, next) = decoder.step(tokens, state);
            state = next;
            let best = logp.clone().argmax(1);
            let best_logp = logp.gather(1, best.clone());
            let ids: Vec<i64> = best.clone().into_data().iter::<i64>().collect();
            let lps: Vec<f64> = best_logp.into_data().iter::<f64>().collect();
            for i in 0..n {
                if done[i] {
                    continue;
                }
                let id = ids[i] as u32;
                if id == self.eos {
                    out[i].log_prob += lps[i];
                    done[i] = true;
                } else if step < self.max_len {
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
            tokens = best.reshape([n]);
        }
        out
    }
}
