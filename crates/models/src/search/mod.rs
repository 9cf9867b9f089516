//! Caption search over any step-wise decoder, batched over images (and beams): greedy, beam search
//! and sampling, chosen in a spec with [`SearchSpec`].

pub mod beam;
pub mod greedy;
pub mod sampling;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use beam::{BeamSearch, LengthPenalty};
pub use greedy::GreedySearch;
pub use sampling::{SamplingSearch, SplitMix64};

use crate::decoder::{CaptionDecoder, DecodeState};
use crate::spec_error::{at_least_one, SpecError};

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

/// The fewest rows a share of [`in_shares`] gets: a one-row matmul takes a different kernel,
/// whose sums can differ from the batched kernel's in the last bit.
pub const MIN_SHARE_ROWS: usize = 8;

/// Decodes `n` rows in up to `threads` equal shares side by side on rayon's threads (each share
/// at least [`MIN_SHARE_ROWS`] rows; one share: on the calling thread): `decode(from, len)`
/// decodes the rows `from..from + len`. The results, concatenated in row order.
pub fn in_shares<T: Send>(
    n: usize,
    threads: usize,
    decode: impl Fn(usize, usize) -> Vec<T> + Sync,
) -> Vec<T> {
    let shares = threads.min(n / MIN_SHARE_ROWS).max(1);
    if shares == 1 {
        return decode(0, n);
    }
    let parts: Vec<Vec<T>> = (0..shares)
        .into_par_iter()
        .map(|i| {
            let from = i * n / shares;
            decode(from, (i + 1) * n / shares - from)
        })
        .collect();
    parts.into_iter().flatten().collect()
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

/// The `[eval] search` section of an experiment spec: which search decodes captions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum SearchSpec {
    /// Arg-max decoding.
    Greedy {
        /// Maximum number of words per caption.
        #[serde(default = "default_max_len")]
        max_len: usize,
    },
    /// Beam search.
    Beam {
        /// Number of beams per image.
        #[serde(default = "default_beam_size")]
        beam_size: usize,
        /// Maximum number of words per caption.
        #[serde(default = "default_max_len")]
        max_len: usize,
        /// Minimum number of words before `<eos>`.
        #[serde(default)]
        min_len: usize,
        /// Ranking of finished captions: `none`, `average` or `wu`.
        #[serde(default)]
        length_penalty: LengthPenalty,
        /// Exponent of the `wu` length penalty.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Size of the n-grams that may not repeat in a caption (0: off).
        #[serde(default)]
        no_repeat_ngram_size: usize,
        /// Never emit `<unk>`.
        #[serde(default)]
        suppress_unk: bool,
    },
    /// Seeded sampling.
    Sample {
        /// Maximum number of words per caption.
        #[serde(default = "default_max_len")]
        max_len: usize,
        /// Softmax temperature (0: arg-max).
        #[serde(default = "default_one")]
        temperature: f64,
        /// Samples among the k most likely tokens (0: off).
        #[serde(default)]
        top_k: usize,
        /// Nucleus mass (1: off).
        #[serde(default = "default_one")]
        top_p: f64,
        /// Seed of the draws.
        #[serde(default)]
        seed: u64,
    },
}

fn default_max_len() -> usize {
    20
}

fn default_beam_size() -> usize {
    3
}

fn default_alpha() -> f64 {
    0.7
}

fn default_one() -> f64 {
    1.0
}

impl Default for SearchSpec {
    fn default() -> Self {
        Self::Greedy {
            max_len: default_max_len(),
        }
    }
}

impl SearchSpec {
    /// Maximum number of words per caption.
    pub fn max_len(&self) -> usize {
        match self {
            Self::Greedy { max_len }
            | Self::Beam { max_len, .. }
            | Self::Sample { max_len, .. } => *max_len,
        }
    }

    /// Checks the `[eval.search]` values; the error names the full key (`eval.search.beam_size`)
    /// and the allowed range.
    pub fn validate(&self) -> Result<(), SpecError> {
        at_least_one("eval.search.max_len", self.max_len())?;
        let number = |key: &str, ok: bool, allowed: &str, got: f64| {
            if ok {
                Ok(())
            } else {
                Err(SpecError::new(key, format!("must be {allowed}, got {got}")))
            }
        };
        match self {
            Self::Greedy { .. } => Ok(()),
            Self::Beam {
                beam_size, alpha, ..
            } => {
                at_least_one("eval.search.beam_size", *beam_size)?;
                number(
                    "eval.search.alpha",
                    alpha.is_finite() && *alpha >= 0.0,
                    "a number ≥ 0",
                    *alpha,
                )
            }
            Self::Sample {
                temperature, top_p, ..
            } => {
                number(
                    "eval.search.temperature",
                    temperature.is_finite() && *temperature >= 0.0,
                    "a number ≥ 0",
                    *temperature,
                )?;
                number(
                    "eval.search.top_p",
                    *top_p > 0.0 && *top_p <= 1.0,
                    "in (0, 1]",
                    *top_p,
                )
            }
        }
    }

    /// Decodes the `n` images of `state`: the best caption of each (`unk` is used by `suppress_unk`).
    #[allow(clippy::too_many_arguments)]
    pub fn decode<B: Backend, D: StepDecoder<B>>(
        &self,
        decoder: &D,
        state: D::State,
        n: usize,
        device: &B::Device,
        sos: u32,
        eos: u32,
        unk: Option<u32>,
    ) -> Vec<Hypothesis> {
        match *self {
            Self::Greedy { max_len } => {
                GreedySearch { max_len, sos, eos }.run(decoder, state, n, device)
            }
            Self::Beam {
                beam_size,
                max_len,
                min_len,
                length_penalty,
                alpha,
                no_repeat_ngram_size,
                suppress_unk,
            } => BeamSearch {
                beam_size,
                max_len,
                min_len,
                length_penalty,
                alpha,
                no_repeat_ngram_size,
                sos,
                eos,
                unk: if suppress_unk { unk } else { None },
            }
            .run_best(decoder, state, n, device),
            Self::Sample {
                max_len,
                temperature,
                top_k,
                top_p,
                seed,
            } => SamplingSearch {
                max_len,
                temperature,
                top_k,
                top_p,
                seed,
                sos,
                eos,
            }
            .run(decoder, state, n, device),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_spec_parses_with_defaults_and_rejects_unknown_fields() {
        let spec: SearchSpec =
            serde_json::from_str(r#"{"method": "beam", "beam_size": 5}"#).unwrap();
        assert_eq!(
            spec,
            SearchSpec::Beam {
                beam_size: 5,
                max_len: 20,
                min_len: 0,
                length_penalty: LengthPenalty::None,
                alpha: 0.7,
                no_repeat_ngram_size: 0,
                suppress_unk: false,
            }
        );
        let spec: SearchSpec =
            serde_json::from_str(r#"{"method": "beam", "length_penalty": "wu", "alpha": 1.0}"#)
                .unwrap();
        assert!(matches!(
            spec,
            SearchSpec::Beam {
                length_penalty: LengthPenalty::Wu,
                ..
            }
        ));
        let spec: SearchSpec = serde_json::from_str(r#"{"method": "sample", "seed": 7}"#).unwrap();
        assert!(matches!(
            spec,
            SearchSpec::Sample {
                seed: 7,
                top_k: 0,
                ..
            }
        ));
        assert_eq!(spec.max_len(), 20);
        let spec: SearchSpec = serde_json::from_str(r#"{"method": "greedy"}"#).unwrap();
        assert_eq!(spec, SearchSpec::default());
        assert!(serde_json::from_str::<SearchSpec>(r#"{"method": "beam", "beam": 5}"#).is_err());
        assert!(serde_json::from_str::<SearchSpec>(r#"{"method": "nucleus"}"#).is_err());
        assert!(
            serde_json::from_str::<SearchSpec>(r#"{"method": "beam", "length_penalty": "x"}"#)
                .is_err()
        );
        let bad: SearchSpec =
            serde_json::from_str(r#"{"method": "beam", "beam_size": 0}"#).unwrap();
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "key eval.search.beam_size must be an integer ≥ 1, got 0"
        );
        let bad: SearchSpec = serde_json::from_str(r#"{"method": "sample", "top_p": 0}"#).unwrap();
        assert_eq!(bad.validate().unwrap_err().key, "eval.search.top_p");
        let bad: SearchSpec = serde_json::from_str(r#"{"method": "beam", "max_len": 0}"#).unwrap();
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "key eval.search.max_len must be an integer ≥ 1, got 0"
        );
    }

    #[test]
    fn search_spec_decode_dispatches_to_each_search() {
        use burn::backend::NdArray;
        use burn::tensor::{Distribution, Tensor};
        type B = NdArray;
        let device = Default::default();
        let decoder = crate::DecoderSpec::default().init::<B>(8, 20, &device);
        let features = Tensor::<B, 2>::random([5, 8], Distribution::Normal(0.0, 1.0), &device);
        let decode = |json: &str| {
            let spec: SearchSpec = serde_json::from_str(json).unwrap();
            let state = decoder.start(features.clone());
            spec.decode(&decoder, state, 5, &device, 1, 2, Some(3))
        };
        let greedy = decode(r#"{"method": "greedy", "max_len": 6}"#);
        assert_eq!(greedy.len(), 5);
        assert!(greedy.iter().all(|h| h.tokens.len() <= 6));
        assert_eq!(
            decode(r#"{"method": "beam", "beam_size": 1, "max_len": 6}"#),
            greedy
        );
        assert_eq!(
            decode(r#"{"method": "sample", "top_k": 1, "max_len": 6}"#),
            greedy
        );
        let wide =
            decode(r#"{"method": "beam", "beam_size": 4, "max_len": 6, "suppress_unk": true}"#);
        assert!(wide
            .iter()
            .all(|h| !h.tokens.contains(&3) && h.tokens.len() <= 6));
        let want = BeamSearch {
            unk: Some(3),
            ..BeamSearch::new(4, 6, 1, 2)
        }
        .decode(&decoder, features.clone());
        assert_eq!(
            wide,
            want.into_iter()
                .map(|mut h| h.swap_remove(0))
                .collect::<Vec<_>>()
        );
    }
}
