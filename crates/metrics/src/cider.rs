//! CIDEr-D as pycocoevalcap's `Cider` (n = 1..4, sigma 6, clipping, x10, document frequencies
//! from the references of the evaluated set).

use crate::hash::FxHashMap;
use crate::ngrams::{matches, order, sorted_counts as counts};
use rayon::prelude::*;

/// TF-IDF vector of one sentence: weights aligned with its sorted n-gram counts.
#[derive(Debug)]
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
///
/// Document frequencies come from the evaluated set's references (pycocoevalcap's `Cider`).
pub fn scores(cands: &[Vec<u32>], refs: &[Vec<Vec<u32>>]) -> Vec<f64> {
    debug_assert_eq!(cands.len(), refs.len());
    let ref_counts: Vec<Vec<Vec<(u128, u32)>>> = refs
        .par_iter()
        .map(|rs| rs.iter().map(|r| counts(r, 4)).collect())
        .collect();
    let cider = CiderD::from_counts(&ref_counts);
    cands
        .par_iter()
        .zip(ref_counts.into_par_iter())
        .map(|(cand, rcs)| cider.score(cand, &cider.prepare_counts(rcs)))
        .collect()
}

/// CIDEr-D with document frequencies fixed once, for scoring many candidates against the same
/// references: the self-critical reward, whose frequencies come from the **training** references
/// (as the reference SCST implementations compute them, once) and whose references are counted
/// and weighted once per image ([`CiderD::prepare`]), not on every step.
///
/// With the evaluated set's own references, [`CiderD::score`] equals [`scores`] exactly.
#[derive(Clone, Debug)]
pub struct CiderD {
    df: FxHashMap<u128, u32>,
    /// ln(number of images whose references gave `df`).
    ref_len: f64,
}

/// One image's references, counted and TF-IDF weighted by a [`CiderD`].
#[derive(Debug)]
pub struct PreparedRefs {
    counts: Vec<Vec<(u128, u32)>>,
    vectors: Vec<Vector>,
}

impl CiderD {
    const SIGMA: f64 = 6.0;

    /// Document frequencies over `refs` (one entry per image: its references as token ids).
    pub fn from_references(refs: &[Vec<Vec<u32>>]) -> CiderD {
        let ref_counts: Vec<Vec<Vec<(u128, u32)>>> = refs
            .par_iter()
            .map(|rs| rs.iter().map(|r| counts(r, 4)).collect())
            .collect();
        Self::from_counts(&ref_counts)
    }

    fn from_counts(ref_counts: &[Vec<Vec<(u128, u32)>>]) -> CiderD {
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
        CiderD {
            df,
            ref_len: (ref_counts.len() as f64).ln(),
        }
    }

    /// Number of images the document frequencies were counted over.
    pub fn documents(&self) -> usize {
        self.ref_len.exp().round() as usize
    }

    /// Counts and weights one image's references for [`CiderD::score`].
    pub fn prepare(&self, refs: &[Vec<u32>]) -> PreparedRefs {
        self.prepare_counts(refs.iter().map(|r| counts(r, 4)).collect())
    }

    fn prepare_counts(&self, counts: Vec<Vec<(u128, u32)>>) -> PreparedRefs {
        let vectors = counts
            .iter()
            .map(|rc| to_vec(rc, &self.df, self.ref_len))
            .collect();
        PreparedRefs { counts, vectors }
    }

    /// The CIDEr-D score (×10, averaged over the references) of `cand` against `refs`.
    pub fn score(&self, cand: &[u32], refs: &PreparedRefs) -> f64 {
        let hc = counts(cand, 4);
        let h = to_vec(&hc, &self.df, self.ref_len);
        let mut score = [0f64; 4];
        for (rc, r) in refs.counts.iter().zip(&refs.vectors) {
            let delta = h.length - r.length;
            let mut val = [0f64; 4];
            matches(&hc, rc, |a, b| {
                let (vh, vr) = (h.weights[a], r.weights[b]);
                val[order(hc[a].0) - 1] += vh.min(vr) * vr;
            });
            let penalty = std::hint::black_box(std::f64::consts::E)
                .powf(-(delta * delta) / (2.0 * Self::SIGMA * Self::SIGMA));
            for n in 0..4 {
                if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
                    val[n] /= h.norm[n] * r.norm[n];
                }
                val[n] *= penalty;
                score[n] += val[n];
            }
        }
        let mut avg = (score[0] + score[1] + score[2] + score[3]) / 4.0;
        avg /= refs.counts.len() as f64;
        avg * 10.0
    }
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

    #[test]
    fn fixed_frequencies_from_the_same_references_equal_scores_bit_for_bit() {
        let refs: Vec<Vec<Vec<u32>>> = (0..20u32)
            .map(|i| {
                (0..5u32)
                    .map(|j| {
                        (0..(4 + (i + j) % 7))
                            .map(|t| (t * 3 + i + j) % 13)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        // Each candidate: the head of one of its references, then a word of its own.
        let cands: Vec<Vec<u32>> = refs
            .iter()
            .enumerate()
            .map(|(i, rs)| {
                let r = &rs[i % 5];
                let mut c = r[..r.len() - 1].to_vec();
                c.push(20 + i as u32 % 3);
                c
            })
            .collect();
        let cider = CiderD::from_references(&refs);
        assert_eq!(cider.documents(), 20);
        let fixed: Vec<f64> = cands
            .iter()
            .zip(&refs)
            .map(|(c, r)| cider.score(c, &cider.prepare(r)))
            .collect();
        let batch = scores(&cands, &refs);
        assert_eq!(fixed, batch);
        assert!(batch.iter().any(|&s| s > 0.0));
    }
}
