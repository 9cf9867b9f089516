//! ROUGE-L (beta 1.2) as pycocoevalcap's `Rouge`.

/// LCS length of two token-id sequences.
fn lcs(a: &[u32], b: &[u32]) -> usize {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let mut prev = vec![0usize; short.len() + 1];
    let mut cur = vec![0usize; short.len() + 1];
    for &x in long {
        for (j, &y) in short.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// ROUGE-L of one candidate against its references (sequences split on `' '`, so an empty
/// caption is one empty token).
pub fn score(cand: &[u32], refs: &[Vec<u32>]) -> f64 {
    const BETA: f64 = 1.2;
    let mut prec_max = f64::NEG_INFINITY;
    let mut rec_max = f64::NEG_INFINITY;
    for r in refs {
        let l = lcs(r, cand) as f64;
        prec_max = prec_max.max(l / cand.len() as f64);
        rec_max = rec_max.max(l / r.len() as f64);
    }
    if prec_max != 0.0 && rec_max != 0.0 && !refs.is_empty() {
        ((1.0 + BETA.powi(2)) * prec_max * rec_max) / (rec_max + BETA.powi(2) * prec_max)
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
