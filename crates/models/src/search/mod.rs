//! Caption search over any step-wise decoder, batched over images (and beams): greedy, beam search
//! and sampling, chosen in a spec with [`SearchSpec`].

pub mod beam;
pub mod greedy;
pub mod sampling;
mod shares;
mod spec;
mod step;

pub use beam::{BeamSearch, LengthPenalty};
pub use greedy::GreedySearch;
pub use sampling::{SamplingSearch, SplitMix64};
pub use shares::{in_shares, MIN_SHARE_ROWS};
pub use spec::SearchSpec;
pub use step::{Hypothesis, Search, StepDecoder};

/// A toy step decoder whose next-token distribution is a known function of the image and the words so far.
#[cfg(test)]
pub(crate) mod toy {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Int, Tensor, TensorData};

    use super::StepDecoder;

    /// Next-token probabilities [V] from (image id, words after `<sos>`).
    pub(crate) struct Toy<F: Fn(u32, &[u32]) -> Vec<f64>> {
        pub vocab: usize,
        pub probs: F,
    }

    impl<F: Fn(u32, &[u32]) -> Vec<f64>> Toy<F> {
        /// State of images `ids`: one row [image id] each.
        pub fn start<B: Backend>(&self, ids: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
            let data: Vec<i64> = ids.iter().map(|i| *i as i64).collect();
            Tensor::from_data(TensorData::new(data, [ids.len(), 1]), device)
        }

        /// The log-probabilities the decoder emits, rounded to f32 as the backend holds them.
        pub fn logp(&self, image: u32, words: &[u32]) -> Vec<f64> {
            let p = (self.probs)(image, words);
            assert_eq!(p.len(), self.vocab);
            p.iter().map(|x| (x.ln() as f32) as f64).collect()
        }
    }

    impl<B: Backend, F: Fn(u32, &[u32]) -> Vec<f64>> StepDecoder<B> for Toy<F> {
        type State = Tensor<B, 2, Int>;

        fn step(
            &self,
            tokens: Tensor<B, 1, Int>,
            state: Self::State,
        ) -> (Tensor<B, 2>, Self::State) {
            let [n] = tokens.dims();
            let device = tokens.device();
            let state = Tensor::cat(vec![state, tokens.reshape([n, 1])], 1);
            let [_, t] = state.dims();
            let rows: Vec<i64> = state.clone().into_data().iter::<i64>().collect();
            let mut out = Vec::with_capacity(n * self.vocab);
            for row in rows.chunks(t) {
                let words: Vec<u32> = row[2..].iter().map(|w| *w as u32).collect();
                out.extend(self.logp(row[0] as u32, &words).iter().map(|x| *x as f32));
            }
            let logp = Tensor::from_data(TensorData::new(out, [n, self.vocab]), &device);
            (logp, state)
        }

        fn select(&self, state: Self::State, indices: Tensor<B, 1, Int>) -> Self::State {
            state.select(0, indices)
        }
    }

    /// Normalises positive weights into probabilities.
    pub(crate) fn normalise(weights: &[f64]) -> Vec<f64> {
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }
}
