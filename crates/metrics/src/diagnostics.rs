//! Decoding diagnostics of a results set: vocabulary, novelty, repetition, length, distinct-n.

use crate::hash::FxHashSet;
use crate::ptb::ptb_tokenize;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Diagnostics of generated captions (computed on PTB-tokenised captions).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Diagnostics {
    /// Number of captions.
    pub captions: usize,
    /// Number of distinct tokens used.
    pub vocab_size: usize,
    /// Percentage of captions that do not occur (tokenised) among the training captions.
    pub novel_pct: f64,
    /// Percentage of distinct captions among the results.
    pub unique_pct: f64,
    /// Fraction of captions containing a repeated bigram (e.g. "a man a man").
    pub repetition_rate: f64,
    /// Mean number of tokens per caption.
    pub avg_length: f64,
    /// distinct-1..4: distinct n-grams / total n-grams over all captions.
    pub distinct: [f64; 4],
}

/// Computes decoding diagnostics of `results` against the training captions.
pub fn diagnose<'a>(
    results: &BTreeMap<String, String>,
    train_captions: impl IntoIterator<Item = &'a str>,
) -> Diagnostics {
    let train: FxHashSet<String> = train_captions
        .into_iter()
        .map(|c| ptb_tokenize(c).join(" "))
        .collect();
    let toks: Vec<Vec<String>> = results.values().map(|c| ptb_tokenize(c)).collect();
    let n = toks.len();
    let mut vocab: FxHashSet<&str> = FxHashSet::default();
    let mut grams: [FxHashSet<Vec<&str>>; 4] = Default::default();
    let mut totals = [0usize; 4];
    let mut novel = 0usize;
    let mut repeated = 0usize;
    let mut len_sum = 0usize;
    let mut unique: FxHashSet<String> = FxHashSet::default();
    for t in &toks {
        let joined = t.join(" ");
        if !train.contains(&joined) {
            novel += 1;
        }
        unique.insert(joined);
        len_sum += t.len();
        let mut bigrams: FxHashSet<(&str, &str)> = FxHashSet::default();
        let mut rep = false;
        for w in t.windows(2) {
            rep |= !bigrams.insert((w[0].as_str(), w[1].as_str()));
        }
        if rep {
            repeated += 1;
        }
        for w in t {
            vocab.insert(w);
        }
        for (k, set) in grams.iter_mut().enumerate() {
            for g in t.windows(k + 1) {
                totals[k] += 1;
                set.insert(g.iter().map(String::as_str).collect());
            }
        }
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut distinct = [0f64; 4];
    for k in 0..4 {
        distinct[k] = frac(grams[k].len(), totals[k]);
    }
    Diagnostics {
        captions: n,
        vocab_size: vocab.len(),
        novel_pct: 100.0 * frac(novel, n),
        unique_pct: 100.0 * frac(unique.len(), n),
        repetition_rate: frac(repeated, n),
        avg_length: frac(len_sum, n),
        distinct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let res: BTreeMap<String, String> = [
            ("1".to_string(), "A man a man riding.".to_string()),
            ("2".to_string(), "A dog.".to_string()),
        ]
        .into();
        let d = diagnose(&res, ["a dog", "a cat"]);
        assert_eq!(d.captions, 2);
        assert_eq!(d.vocab_size, 4);
        assert_eq!(d.novel_pct, 50.0);
        assert_eq!(d.repetition_rate, 0.5);
        assert_eq!(d.avg_length, 3.5);
        assert!((d.distinct[0] - 4.0 / 7.0).abs() < 1e-12);
    }
}
