//! `GreedySearch`: batched arg-max decoding, one step for the whole batch at a time.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::Hypothesis;
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
    /// Decodes every row of `features` [N, F]; stops early once all rows emitted `<eos>`.
    pub fn decode<B: Backend>(
        &self,
        decoder: &CaptionDecoder<B>,
        features: Tensor<B, 2>,
    ) -> Vec<Hypothesis> {
        let device = features.device();
        let [n, _] = features.dims();
        let mut state = decoder.start(features);
        let mut tokens: Tensor<B, 1, Int> =
            Tensor::from_data(TensorData::new(vec![self.sos as i64; n], [n]), &device);
        let mut out: Vec<Hypothesis> = (0..n)
            .map(|_| Hypothesis {
                tokens: Vec::new(),
                log_prob: 0.0,
            })
            .collect();
        let mut done = vec![false; n];
        for _ in 0..=self.max_len {
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
                out[i].log_prob += lps[i];
                if id == self.eos {
                    done[i] = true;
                } else {
                    out[i].tokens.push(id);
                }
            }
            if done.iter().all(|d| *d) {
                break;
            }
            tokens = best.reshape([n]);
        }
        // Rows that never emitted <eos> within max_len keep max_len words.
        for h in &mut out {
            h.tokens.truncate(self.max_len);
        }
        out
    }
}
