//! ROUGE-L (beta 1.2) as pycocoevalcap's `Rouge`.

/// LCS length of two token-id sequences.
fn lcs(a: &[u32], b: &[u32]) -> usize {
    lcs_in(a, b, &mut Vec::new(), &mut Vec::new()) as usize
}

/// LCS length of two token-id sequences with two reused DP rows (`prev`, `cur`).
pub(crate) fn lcs_in(a: &[u32], b: &[u32], prev: &mut Vec<u32>, cur: &mut Vec<u32>) -> u32 {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    prev.clear();
    prev.resize(short.len() + 1, 0);
    cur.clear();
    cur.resize(short.len() + 1, 0);
    for &x in long {
        for (j, &y) in short.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(prev, cur);
    }
    prev[short.len()]
}

/// ROUGE-L of one candidate against its references (sequences split on `' '`, so an empty
/// caption is one empty token).
pub fn score(cand: &[u32], refs: &[Vec<u32>]) -> f64 {
    from_lcs(
        cand.len(),
        refs.iter().map(|r| (lcs(r, cand) as f64, r.len())),
    )
}

/// ROUGE-L of a candidate of `cand_len` tokens from the LCS length and the length of each of
/// its references, the precision and recall maxima taken independently (as pycocoevalcap); 0
/// without references.
pub(crate) fn from_lcs(
    cand_len: usize,
    lcs_and_ref_len: impl IntoIterator<Item = (f64, usize)>,
) -> f64 {
    const BETA2: f64 = 1.2 * 1.2;
    let mut prec_max = f64::NEG_INFINITY;
    let mut rec_max = f64::NEG_INFINITY;
    let mut any = false;
    for (l, ref_len) in lcs_and_ref_len {
        any = true;
        prec_max = prec_max.max(l / cand_len as f64);
        rec_max = rec_max.max(l / ref_len as f64);
    }
    if prec_max != 0.0 && rec_max != 0.0 && any {
        ((1.0 + BETA2) * prec_max * rec_max) / (rec_max + BETA2 * prec_max)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_and_score() {
        assert_eq!(lcs(&[1, 2, 3, 4], &[1, 3, 4]), 3);
        assert!((score(&[1, 2], &[vec![1, 2]]) - 1.0).abs() < 1e-12);
        assert_eq!(score(&[1, 2], &[vec![3]]), 0.0);
        // Precision and recall maxima are taken independently.
        // ([1] gives R = 1, the long reference gives P = 1), so the score is 1.
        let s = score(&[1, 2, 3], &[vec![1], vec![1, 2, 3, 4, 5, 6]]);
        assert!((s - 1.0).abs() < 1e-12);
        // An empty candidate against an empty reference: one empty token each, LCS 1.
        assert!((score(&[0], &[vec![0]]) - 1.0).abs() < 1e-12);
    }
}
