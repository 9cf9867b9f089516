//! The `[eval] search` section of an experiment spec ([`SearchSpec`]): which search decodes
//! captions, its settings and their validation.

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::beam::{BeamSearch, LengthPenalty};
use super::greedy::GreedySearch;
use super::sampling::SamplingSearch;
use super::step::{Hypothesis, Search, StepDecoder};
use crate::spec_error::{at_least_one, SpecError};

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
