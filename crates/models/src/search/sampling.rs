//! `SamplingSearch`: seeded ancestral sampling with temperature, top-k and top-p (nucleus), batched over images.
//!
//! The sampling distribution is computed on the backend (sort, temperature, truncation, cumulative
//! sum); the host only draws one uniform number per image and step from a seeded [`SplitMix64`]
//! generator (Steele et al., 2014), so that a seed gives the same captions on every backend.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::step::{decode_rows, Hypothesis, Search, StepDecoder};

/// Batched sampling of one caption per image.
#[derive(Clone, Debug)]
pub struct SamplingSearch {
    /// Maximum number of words per caption (`<eos>` excluded).
    pub max_len: usize,
    /// Softmax temperature; 0 (or less) means arg-max.
    pub temperature: f64,
    /// Samples among the `top_k` most likely tokens only (0: off).
    pub top_k: usize,
    /// Samples within the smallest set of tokens whose probability reaches `top_p` (1: off).
    pub top_p: f64,
    /// Seed of the random draws.
    pub seed: u64,
    /// Id of `<sos>`.
    pub sos: u32,
    /// Id of `<eos>`.
    pub eos: u32,
}

impl SamplingSearch {
    /// One token [N, 1] per row of `logp` [N, V], drawn with the uniform numbers `uniform` (one per row).
    fn draw<B: Backend>(
        &self,
        logp: Tensor<B, 2>,
        uniform: Vec<f32>,
        device: &B::Device,
    ) -> Tensor<B, 2, Int> {
        let [n, v] = logp.dims();
        if self.temperature <= 0.0 || self.top_k == 1 {
            return logp.argmax(1);
        }
        let (sorted, order) = logp.sort_descending_with_indices(1);
        let top = sorted.clone().narrow(1, 0, 1);
        // Unnormalised tempered probabilities, largest first (the first is exactly 1).
        let mut probs = ((sorted - top) / self.temperature).exp();
        if self.top_k > 1 && self.top_k < v {
            let outside = Tensor::<B, 1, Int>::arange(0..v as i64, device)
                .reshape([1, v])
                .greater_equal_elem(self.top_k as i64)
                .expand([n, v]);
            probs = probs.mask_fill(outside, 0.0);
        }
        if self.top_p < 1.0 {
            let total = probs.clone().sum_dim(1);
            let before = probs.clone().cumsum(1) - probs.clone();
            let p = self.top_p.max(f64::MIN_POSITIVE);
            let outside = before.greater_equal(total.mul_scalar(p).expand([n, v]));
            probs = probs.mask_fill(outside, 0.0);
        }
        let cumulative = probs.clone().cumsum(1);
        let total = cumulative.clone().narrow(1, v - 1, 1);
        let uniform: Tensor<B, 2> = Tensor::from_data(TensorData::new(uniform, [n, 1]), device);
        let target = (uniform * total).expand([n, v]);
        let position = cumulative.lower_equal(target).int().sum_dim(1);
        // Rounding may run past the last kept token, which always ends the kept prefix.
        let last = probs.greater_elem(0.0).int().sum_dim(1) - 1;
        let position = position.min_pair(last);
        order.gather(1, position)
    }
}

impl Search for SamplingSearch {
    type Output = Vec<Hypothesis>;

    /// Samples one caption for each of the `n` rows of `state`; log-probs are under the untempered model.
    fn run<B: Backend, D: StepDecoder<B>>(
        &self,
        decoder: &D,
        state: D::State,
        n: usize,
        device: &B::Device,
    ) -> Vec<Hypothesis> {
        let mut rng = SplitMix64::new(self.seed);
        decode_rows(
            decoder,
            state,
            n,
            device,
            self.sos,
            self.eos,
            self.max_len,
            |logp| {
                let uniform: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32).collect();
                self.draw(logp, uniform, device)
            },
        )
    }
}

/// SplitMix64 (Steele, Lea & Flood, 2014): a tiny seeded generator for the sampling draws.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use crate::search::Search;
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor};

    use super::super::toy::Toy;
    use super::super::{GreedySearch, Hypothesis};
    use super::{SamplingSearch, SplitMix64};
    use crate::{CaptionDecoder, DecoderSpec};

    type B = NdArray;

    fn sampler(temperature: f64, top_k: usize, top_p: f64, seed: u64) -> SamplingSearch {
        SamplingSearch {
            max_len: 10,
            temperature,
            top_k,
            top_p,
            seed,
            sos: 1,
            eos: 2,
        }
    }

    fn model() -> (CaptionDecoder<B>, Tensor<B, 2>) {
        let device = Default::default();
        let decoder = DecoderSpec::default().init::<B>(12, 30, &device);
        let features = Tensor::<B, 2>::random([16, 12], Distribution::Normal(0.0, 1.0), &device);
        (decoder, features)
    }

    #[test]
    fn same_seed_same_captions() {
        let (decoder, features) = model();
        let a = sampler(1.0, 0, 1.0, 7).decode(&decoder, features.clone());
        let b = sampler(1.0, 0, 1.0, 7).decode(&decoder, features.clone());
        let c = sampler(1.0, 0, 1.0, 8).decode(&decoder, features);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|h| h.log_prob.is_finite() && h.log_prob < 0.0));
    }

    #[test]
    fn cold_or_top_one_sampling_is_greedy() {
        let (decoder, features) = model();
        let greedy = GreedySearch {
            max_len: 10,
            sos: 1,
            eos: 2,
        }
        .decode(&decoder, features.clone());
        // Log-probs are under the untempered model, whatever the temperature.
        for search in [sampler(0.0, 0, 1.0, 3), sampler(2.0, 1, 1.0, 3)] {
            let got = search.decode(&decoder, features.clone());
            assert_eq!(got.len(), greedy.len());
            for (s, g) in got.iter().zip(&greedy) {
                assert_eq!(s.tokens, g.tokens, "{search:?}");
                assert!((s.log_prob - g.log_prob).abs() < 1e-9, "{search:?}");
            }
        }
        // A temperature near 0 draws the arg-max unless two tokens are within about the
        // temperature of each other (an untrained decoder's random logits sometimes are), so it
        // is checked on a toy whose best token always leads the next by ln(8/7).
        let toy = Toy {
            vocab: 8,
            probs: |image: u32, words: &[u32]| {
                let key =
                    image as usize * 31 + words.len() * 7 + words.last().map_or(0, |w| *w as usize);
                let weights: Vec<f64> = (0..8).map(|t| ((t + key) % 8 + 1) as f64).collect();
                super::super::toy::normalise(&weights)
            },
        };
        let device = Default::default();
        let images: Vec<u32> = (0..40).collect();
        let decode = |search: &dyn Fn(Tensor<B, 2, burn::tensor::Int>) -> Vec<Hypothesis>| {
            search(toy.start::<B>(&images, &device))
        };
        let greedy = decode(&|state| {
            GreedySearch {
                max_len: 10,
                sos: 1,
                eos: 2,
            }
            .run(&toy, state, images.len(), &device)
        });
        let cold =
            decode(&|state| sampler(1e-5, 0, 1.0, 3).run(&toy, state, images.len(), &device));
        assert_eq!(cold.len(), greedy.len());
        for (s, g) in cold.iter().zip(&greedy) {
            assert_eq!(s.tokens, g.tokens);
            assert!((s.log_prob - g.log_prob).abs() < 1e-9);
        }
    }

    #[test]
    fn top_p_and_top_k_restrict_to_the_nucleus() {
        // First word: 4 (0.5), 5 (0.3), <unk> (0.1), <pad> (0.05), <sos> (0.03), <eos> (0.02).
        let toy = Toy {
            vocab: 6,
            probs: |_: u32, words: &[u32]| match words {
                [] => vec![0.05, 0.03, 0.02, 0.1, 0.5, 0.3],
                _ => vec![0.02, 0.02, 0.9, 0.02, 0.02, 0.02],
            },
        };
        let device = Default::default();
        let images: Vec<u32> = (0..2000).collect();
        let first = |search: SamplingSearch| -> Vec<Option<u32>> {
            let search = SamplingSearch {
                max_len: 1,
                ..search
            };
            let state = toy.start::<B>(&images, &device);
            let hyps = search.run(&toy, state, images.len(), &device);
            hyps.iter().map(|h| h.tokens.first().copied()).collect()
        };
        let share = |tokens: &[Option<u32>], t: u32| {
            tokens.iter().filter(|x| **x == Some(t)).count() as f64 / tokens.len() as f64
        };
        for nucleus in [
            first(sampler(1.0, 0, 0.75, 5)),
            first(sampler(1.0, 2, 1.0, 5)),
        ] {
            assert!(nucleus.iter().all(|t| matches!(t, Some(4) | Some(5))));
            // Renormalised within the nucleus: 0.5 / 0.8 and 0.3 / 0.8.
            assert!(
                (share(&nucleus, 4) - 0.625).abs() < 0.04,
                "{}",
                share(&nucleus, 4)
            );
        }
        let full = first(sampler(1.0, 0, 1.0, 5));
        assert!((share(&full, 4) - 0.5).abs() < 0.04);
        assert!((share(&full, 3) - 0.1).abs() < 0.03);
        assert!(full.iter().any(|t| t.is_none()), "no <eos> drawn");
        // A hotter temperature flattens the distribution.
        let hot = first(sampler(3.0, 0, 1.0, 5));
        assert!(share(&hot, 4) < 0.4);
    }

    #[test]
    fn splitmix_is_seeded_and_uniform() {
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..4000).map(|_| rng.next_f64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        let xs = draw(9);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02);
    }
}
