//! CIDEr-D as pycocoevalcap's `Cider` (n = 1..4, sigma 6, clipping, x10, document frequencies
//! from the references of the evaluated set).

use crate::hash::{FxHashMap, FxHashSet};
use crate::ngrams::{ngram_keys, order};
use rayon::prelude::*;

struct Vector {
    weights: FxHashMap<u128, f64>,
    norm: [f64; 4],
    length: f64,
}

fn counts(toks: &[u32]) -> Vec<(u128, u32)> {
    let mut m: FxHashMap<u128, u32> = FxHashMap::default();
    let mut order_of_first = Vec::new();
    for k in ngram_keys(toks, 4) {
        let e = m.entry(k).or_insert(0);
        if *e == 0 {
            order_of_first.push(k);
        }
        *e += 1;
    }
    order_of_first.into_iter().map(|k| (k, m[&k])).collect()
}

fn to_vec(cnts: &[(u128, u32)], df: &FxHashMap<u128, u32>, ref_len: f64) -> Vector {
    let mut weights = FxHashMap::default();
    let mut norm = [0f64; 4];
    let mut length = 0f64;
    for &(k, tf) in cnts {
        let d = f64::from(df.get(&k).copied().unwrap_or(0).max(1)).ln();
        let n = order(k) - 1;
        let w = f64::from(tf) * (ref_len - d);
        weights.insert(k, w);
        norm[n] += w * w;
        if n == 1 {
            length += f64::from(tf);
        }
    }
    for v in &mut norm {
        *v = v.sqrt();
    }
    Vector {
        weights,
        norm,
        length,
    }
}

/// Per-image CIDEr-D scores of candidates against references (token ids), in input order.
pub fn scores(cands: &[Vec<u32>], refs: &[Vec<Vec<u32>>]) -> Vec<f64> {
    const SIGMA: f64 = 6.0;
    let ref_counts: Vec<Vec<Vec<(u128, u32)>>> = refs
        .par_iter()
        .map(|rs| rs.iter().map(|r| counts(r)).collect())
        .collect();
    let mut df: FxHashMap<u128, u32> = FxHashMap::default();
    for rs in &ref_counts {
        let set: FxHashSet<u128> = rs.iter().flat_map(|c| c.iter().map(|x| x.0)).collect();
        for k in set {
            *df.entry(k).or_insert(0) += 1;
        }
    }
    let ref_len = (cands.len() as f64).ln();
    cands
        .par_iter()
        .zip(ref_counts.par_iter())
        .map(|(cand, rcs)| {
            let hc = counts(cand);
            let h = to_vec(&hc, &df, ref_len);
            let mut score = [0f64; 4];
            for rc in rcs {
                let r = to_vec(rc, &df, ref_len);
                let delta = h.length - r.length;
                let mut val = [0f64; 4];
                for &(k, _) in &hc {
                    let vh = h.weights[&k];
                    let vr = r.weights.get(&k).copied().unwrap_or(0.0);
                    val[order(k) - 1] += vh.min(vr) * vr;
                }
                for n in 0..4 {
                    if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
                        val[n] /= h.norm[n] * r.norm[n];
                    }
                    val[n] *= std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
                    score[n] += val[n];
                }
            }
            let mut avg = (score[0] + score[1] + score[2] + score[3]) / 4.0;
            avg /= rcs.len() as f64;
            avg * 10.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_to_all_refs_scores_ten_and_single_image_zero() {
        let r = vec![1, 2, 3, 4, 5];
        let other = vec![6, 7, 8, 9];
        let s = scores(
            &[r.clone(), other.clone()],
            &[vec![r.clone(); 5], vec![vec![10, 11, 12]; 5]],
        );
        assert!((s[0] - 10.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s[1], 0.0);
        assert_eq!(
            scores(std::slice::from_ref(&r), &[vec![r.clone()]]),
            vec![0.0]
        );
    }
}
