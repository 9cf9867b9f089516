//! BLEU-1..4 exactly as pycocoevalcap's `Bleu(4)` (option "closest").

use crate::ngrams::{order, sorted_counts};

/// Number of sufficient statistics per image: testlen, reflen, guess[4], correct[4].
pub const STATS: usize = 10;

/// Sufficient statistics of one image (candidate and references as token ids).
pub fn stats(cand: &[u32], refs: &[Vec<u32>]) -> [f64; STATS] {
    let ref_counts: Vec<Vec<(u128, u32)>> = refs.iter().map(|r| sorted_counts(r, 4)).collect();
    let testlen = cand.len();
    // Closest reference length, ties to the shorter one.
    let reflen = refs
        .iter()
        .map(|r| (r.len().abs_diff(testlen), r.len()))
        .min()
        .map_or(0, |x| x.1);
    let mut s = [0f64; STATS];
    s[0] = testlen as f64;
    s[1] = reflen as f64;
    for n in 0..4 {
        s[2 + n] = (testlen + 1).saturating_sub(n + 1) as f64;
    }
    for (k, c) in sorted_counts(cand, 4) {
        // Clip by the largest count in any single reference.
        let clip = ref_counts
            .iter()
            .filter_map(|rc| rc.binary_search_by(|x| x.0.cmp(&k)).ok().map(|i| rc[i].1))
            .max()
            .unwrap_or(0);
        s[6 + order(k) - 1] += f64::from(c.min(clip));
    }
    s
}

/// BLEU-1..4 from (summed) sufficient statistics, with pycocoevalcap's constants.
pub fn from_stats(s: &[f64]) -> [f64; 4] {
    const TINY: f64 = 1e-15;
    const SMALL: f64 = 1e-9;
    let mut out = [0f64; 4];
    let mut bleu = 1.0f64;
    for k in 0..4 {
        bleu *= (s[6 + k] + TINY) / (s[2 + k] + SMALL);
        // Through libm's pow like Python's `**`: a constant exponent would let the compiler
        // turn pow(x, 0.5) into sqrt(x), which rounds differently in the last bit.
        out[k] = bleu.powf(std::hint::black_box(1.0 / (k as f64 + 1.0)));
    }
    let ratio = (s[0] + TINY) / (s[1] + SMALL);
    if ratio < 1.0 {
        for v in &mut out {
            *v *= (1.0 - 1.0 / ratio).exp();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_is_one_and_empty_is_zero() {
        let r = vec![1, 2, 3, 4, 5];
        let b = from_stats(&stats(&r, std::slice::from_ref(&r)));
        for v in b {
            assert!((v - 1.0).abs() < 1e-9);
        }
        let e = from_stats(&stats(&[], std::slice::from_ref(&r)));
        assert_eq!(e, [0.0; 4]);
        // A 2-word candidate: no trigram guesses give a factor 1e-15/1e-9, not 0.
        let two = from_stats(&stats(&[1, 2], &[vec![1, 2]]));
        assert!((two[2] - 1e-2).abs() < 1e-6, "{two:?}");
    }

    #[test]
    fn closest_reference_length_ties_to_shorter() {
        let s = stats(&[1, 2, 3], &[vec![1, 2], vec![1, 2, 3, 4]]);
        assert_eq!(s[1], 2.0);
    }
}
