//! CIDEr-D as pycocoevalcap's `Cider` (n = 1..4, sigma 6, clipping, x10, document frequencies
//! from the references of the evaluated set).

use crate::hash::FxHashMap;
use crate::ngrams::{order, sorted_counts as counts};
use rayon::prelude::*;

/// TF-IDF vector of one sentence: weights aligned with its sorted n-gram counts.
struct Vector {
    weights: Vec<f64>,
    norm: [f64; 4],
    length: f64,
}

fn to_vec(cnts: &[(u128, u32)], df: &FxHashMap<u128, u32>, ref_len: f64) -> Vector {
    let mut weights = Vec::with_capacity(cnts.len());
    let mut norm = [0f64; 4];
    let mut length = 0f64;
    for &(k, tf) in cnts {
        let d = f64::from(df.get(&k).copied().unwrap_or(0).max(1)).ln();
        let n = order(k) - 1;
        let w = f64::from(tf) * (ref_len - d);
        weights.push(w);
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
        .map(|rs| rs.iter().map(|r| counts(r, 4)).collect())
        .collect();
    // The distinct n-grams of each image's pooled references.
    let image_keys: Vec<Vec<u128>> = ref_counts
        .par_iter()
        .map(|rs| {
            let mut ks: Vec<u128> = rs.iter().flat_map(|c| c.iter().map(|x| x.0)).collect();
            ks.sort_unstable();
            ks.dedup();
            ks
        })
        .collect();
    let mut df: FxHashMap<u128, u32> = FxHashMap::default();
    df.reserve(image_keys.iter().map(Vec::len).sum::<usize>() / 2);
    for ks in &image_keys {
        for &k in ks {
            *df.entry(k).or_insert(0) += 1;
        }
    }
    let ref_len = (cands.len() as f64).ln();
    cands
        .par_iter()
        .zip(ref_counts.par_iter())
        .map(|(cand, rcs)| {
            let hc = counts(cand, 4);
            let h = to_vec(&hc, &df, ref_len);
            let mut score = [0f64; 4];
            for rc in rcs {
                let r = to_vec(rc, &df, ref_len);
                let delta = h.length - r.length;
                let mut val = [0f64; 4];
                // Merge join of the two sorted n-gram lists.
                let (mut a, mut b) = (0, 0);
                while a < hc.len() && b < rc.len() {
                    match hc[a].0.cmp(&rc[b].0) {
                        std::cmp::Ordering::Less => a += 1,
                        std::cmp::Ordering::Greater => b += 1,
                        std::cmp::Ordering::Equal => {
                            let (vh, vr) = (h.weights[a], r.weights[b]);
                            val[order(hc[a].0) - 1] += vh.min(vr) * vr;
                            a += 1;
                            b += 1;
                        }
                    }
                }
                let penalty = std::hint::black_box(std::f64::consts::E)
                    .powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
                for n in 0..4 {
                    if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
                        val[n] /= h.norm[n] * r.norm[n];
                    }
                    val[n] *= penalty;
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
