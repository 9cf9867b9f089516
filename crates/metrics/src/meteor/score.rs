//! METEOR's score from its statistics (the jar's `MeteorScorer.computeMetrics`) with the English
//! parameters, and a segment's share of the corpus sum.

/// English parameters of METEOR 1.5 (task "rank"): alpha, beta, gamma, delta.
pub const PARAMS: [f64; 4] = [0.85, 0.20, 0.60, 0.75];
/// Scoring weights of the exact, stem, synonym and paraphrase modules.
pub const MODULE_WEIGHTS: [f64; 4] = [1.0, 0.6, 0.8, 0.6];
/// Length of the statistics vector: tstLen refLen tstFunc refFunc, 4 x (tstContent refContent
/// tstFunc refFunc), chunks, tstWordMatches refWordMatches.
pub const STATS: usize = 23;

/// Statistics of one segment as they enter the corpus sum: the jar adds 0 chunks for a segment
/// whose words are all matched on both sides in exactly one chunk.
pub fn corpus_contribution(mut stats: Vec<f64>) -> Vec<f64> {
    if stats.len() == STATS && stats[21] == stats[0] && stats[22] == stats[1] && stats[20] == 1.0 {
        stats[20] = 0.0;
    }
    stats
}

/// METEOR score from (summed) statistics, as `MeteorScorer.computeMetrics`.
pub fn score_from_stats(s: &[f64]) -> f64 {
    if s.len() < STATS {
        return 0.0;
    }
    let [alpha, beta, gamma, delta] = PARAMS;
    let (tst_len, ref_len, tst_fun, ref_fun) = (s[0], s[1], s[2], s[3]);
    let tst_wlen = delta * (tst_len - tst_fun) + (1.0 - delta) * tst_fun;
    let ref_wlen = delta * (ref_len - ref_fun) + (1.0 - delta) * ref_fun;
    let mut tst_w = 0.0;
    let mut ref_w = 0.0;
    for (i, w) in MODULE_WEIGHTS.iter().enumerate() {
        tst_w += s[4 + 4 * i] * w * delta;
    }
    for (i, w) in MODULE_WEIGHTS.iter().enumerate() {
        ref_w += s[5 + 4 * i] * w * delta;
    }
    for (i, w) in MODULE_WEIGHTS.iter().enumerate() {
        tst_w += s[6 + 4 * i] * w * (1.0 - delta);
    }
    for (i, w) in MODULE_WEIGHTS.iter().enumerate() {
        ref_w += s[7 + 4 * i] * w * (1.0 - delta);
    }
    let p = tst_w / tst_wlen;
    let r = ref_w / ref_wlen;
    let fmean = 1.0 / (((1.0 - alpha) / p) + (alpha / r));
    let (chunks, tst_m, ref_m) = (s[20], s[21], s[22]);
    let frag = if tst_m == tst_len && ref_m == ref_len && chunks == 1.0 {
        0.0
    } else {
        chunks / ((tst_m + ref_m) / 2.0)
    };
    let score = fmean * (1.0 - gamma * frag.powf(beta));
    if score.is_nan() {
        0.0
    } else {
        score.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_match_scores_one_and_no_match_zero() {
        // 4 content words, all exact matches, one chunk.
        let mut s = vec![0.0; STATS];
        s[0] = 4.0;
        s[1] = 4.0;
        s[4] = 4.0;
        s[5] = 4.0;
        s[20] = 1.0;
        s[21] = 4.0;
        s[22] = 4.0;
        assert!((score_from_stats(&s) - 1.0).abs() < 1e-12);
        assert_eq!(corpus_contribution(s.clone())[20], 0.0);
        let mut z = vec![0.0; STATS];
        z[0] = 3.0;
        z[1] = 3.0;
        assert_eq!(score_from_stats(&z), 0.0);
    }
}
