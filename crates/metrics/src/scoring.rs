//! BLEU-1..4, ROUGE-L and CIDEr-D of a whole evaluation set in two parallel passes over
//! interned captions: n-grams (n <= 4) packed into integer keys once per caption and shared by
//! BLEU and CIDEr, per-thread scratch buffers, merge joins of sorted n-gram counts.

use crate::corpus::Corpus;
use crate::hash::FxHashMap;
use rayon::prelude::*;
use std::hash::Hash;

/// Per-image BLEU statistics, ROUGE-L and CIDEr-D.
pub struct Scores {
    /// BLEU sufficient statistics (see [`crate::bleu::STATS`]).
    pub bleu: Vec<[f64; crate::bleu::STATS]>,
    /// ROUGE-L.
    pub rouge: Vec<f64>,
    /// CIDEr-D.
    pub cider: Vec<f64>,
}

/// A packed n-gram (n <= 4): token ids + 1 in fixed-width fields, order implicit.
trait Key: Copy + Ord + Hash + Send + Sync {
    /// Field width in bits.
    const FIELD: u32;
    /// Packs one n-gram.
    fn pack(w: &[u32]) -> Self;
    /// The order (1..=4) of a key.
    fn order(self) -> usize;
}

impl Key for u64 {
    const FIELD: u32 = 16;
    #[inline]
    fn pack(w: &[u32]) -> u64 {
        w.iter().fold(0, |acc, &t| (acc << 16) | u64::from(t + 1))
    }
    #[inline]
    fn order(self) -> usize {
        (64 - self.leading_zeros() as usize).div_ceil(16)
    }
}

impl Key for u128 {
    const FIELD: u32 = 32;
    #[inline]
    fn pack(w: &[u32]) -> u128 {
        w.iter().fold(0, |acc, &t| (acc << 32) | u128::from(t + 1))
    }
    #[inline]
    fn order(self) -> usize {
        (128 - self.leading_zeros() as usize).div_ceil(32)
    }
}

/// Appends the sorted n-gram counts (n = 1..=4) of `toks` to `out`.
fn push_counts<K: Key>(toks: &[u32], keys: &mut Vec<K>, out: &mut Vec<(K, u32)>) {
    keys.clear();
    for n in 1..=4 {
        keys.extend(toks.windows(n).map(K::pack));
    }
    keys.sort_unstable();
    let start = out.len();
    for &k in keys.iter() {
        let len = out.len();
        match out.last_mut() {
            Some((last, c)) if len > start && *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
}

/// The n-gram counts of one image: candidate, then each reference.
struct Image<K> {
    counts: Vec<(K, u32)>,
    /// Candidate: `counts[offs[0]..offs[1]]`, reference j: `counts[offs[j + 1]..offs[j + 2]]`.
    offs: Vec<u32>,
    /// Candidate and reference lengths (whitespace tokens), for CIDEr's length penalty.
    bigrams: Vec<u32>,
}

impl<K> Image<K> {
    fn part(&self, j: usize) -> &[(K, u32)] {
        &self.counts[self.offs[j] as usize..self.offs[j + 1] as usize]
    }
}

#[derive(Default)]
struct Scratch<K> {
    keys: Vec<K>,
    clip: Vec<u32>,
    prev: Vec<u32>,
    cur: Vec<u32>,
    weights: Vec<f64>,
}

/// LCS length with two reused DP rows.
fn lcs(a: &[u32], b: &[u32], prev: &mut Vec<u32>, cur: &mut Vec<u32>) -> u32 {
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

/// Scores every image. `ws`: captions split on whitespace (BLEU, CIDEr), `sp`: split on
/// single spaces (ROUGE-L); both hold all references (image i's are captions
/// `ref_start[i]..ref_start[i + 1]`) followed by one candidate per image.
pub fn score(ws: &Corpus, sp: &Corpus, ref_start: &[u32]) -> Scores {
    if ws.vocab.len() < (1 << u64::FIELD) - 1 {
        score_with::<u64>(ws, sp, ref_start)
    } else {
        score_with::<u128>(ws, sp, ref_start)
    }
}

fn score_with<K: Key + Default>(ws: &Corpus, sp: &Corpus, ref_start: &[u32]) -> Scores {
    let images = ref_start.len() - 1;
    let n_refs = ref_start[images] as usize;
    let t0 = std::time::Instant::now();
    // Pass 1: n-gram counts, BLEU and ROUGE-L.
    let first: Vec<(Image<K>, [f64; crate::bleu::STATS], f64)> = (0..images)
        .into_par_iter()
        .map_init(Scratch::<K>::default, |s, i| {
            let refs = ref_start[i] as usize..ref_start[i + 1] as usize;
            let cand = ws.caption(n_refs + i);
            let mut counts = Vec::with_capacity(40 * (refs.len() + 1));
            let mut offs = Vec::with_capacity(refs.len() + 2);
            let mut bigrams = Vec::with_capacity(refs.len() + 1);
            offs.push(0);
            push_counts(cand, &mut s.keys, &mut counts);
            offs.push(counts.len() as u32);
            bigrams.push(cand.len().saturating_sub(1) as u32);
            for r in refs.clone() {
                let rt = ws.caption(r);
                push_counts(rt, &mut s.keys, &mut counts);
                offs.push(counts.len() as u32);
                bigrams.push(rt.len().saturating_sub(1) as u32);
            }
            let img = Image {
                counts,
                offs,
                bigrams,
            };
            // BLEU: clip candidate counts by the largest count in any single reference.
            let hc = img.part(0);
            s.clip.clear();
            s.clip.resize(hc.len(), 0);
            for j in 0..refs.len() {
                let rc = img.part(j + 1);
                let (mut a, mut b) = (0, 0);
                while a < hc.len() && b < rc.len() {
                    match hc[a].0.cmp(&rc[b].0) {
                        std::cmp::Ordering::Less => a += 1,
                        std::cmp::Ordering::Greater => b += 1,
                        std::cmp::Ordering::Equal => {
                            s.clip[a] = s.clip[a].max(rc[b].1);
                            a += 1;
                            b += 1;
                        }
                    }
                }
            }
            let testlen = cand.len();
            let reflen = refs
                .clone()
                .map(|r| {
                    let l = ws.caption(r).len();
                    (l.abs_diff(testlen), l)
                })
                .min()
                .map_or(0, |x| x.1);
            let mut b = [0f64; crate::bleu::STATS];
            b[0] = testlen as f64;
            b[1] = reflen as f64;
            for n in 0..4 {
                b[2 + n] = (testlen + 1).saturating_sub(n + 1) as f64;
            }
            let mut correct = [0u32; 4];
            for (&(k, c), &clip) in hc.iter().zip(&s.clip) {
                correct[k.order() - 1] += c.min(clip);
            }
            for n in 0..4 {
                b[6 + n] = f64::from(correct[n]);
            }
            // ROUGE-L (beta 1.2), precision and recall maxima taken independently.
            const BETA2: f64 = 1.2 * 1.2;
            let sc = sp.caption(n_refs + i);
            let mut prec_max = f64::NEG_INFINITY;
            let mut rec_max = f64::NEG_INFINITY;
            for r in refs.clone() {
                let rt = sp.caption(r);
                let l = f64::from(lcs(rt, sc, &mut s.prev, &mut s.cur));
                prec_max = prec_max.max(l / sc.len() as f64);
                rec_max = rec_max.max(l / rt.len() as f64);
            }
            let rouge = if prec_max != 0.0 && rec_max != 0.0 && !refs.is_empty() {
                ((1.0 + BETA2) * prec_max * rec_max) / (rec_max + BETA2 * prec_max)
            } else {
                0.0
            };
            (img, b, rouge)
        })
        .collect();

    eprintln!("pass1 {:?}", t0.elapsed());
    // Document frequency of each n-gram over the images' pooled references, then ln(max(df, 1)).
    let mut df: FxHashMap<K, f64> = FxHashMap::default();
    {
        let mut keys: Vec<K> = Vec::new();
        for (img, _, _) in &first {
            keys.clear();
            keys.extend(img.counts[img.offs[1] as usize..].iter().map(|x| x.0));
            keys.sort_unstable();
            keys.dedup();
            for &k in &keys {
                *df.entry(k).or_insert(0.0) += 1.0;
            }
        }
    }
    df.values_mut().for_each(|v| *v = v.max(1.0).ln());

    eprintln!("df {:?} {}", t0.elapsed(), df.len());
    // Pass 2: CIDEr-D.
    const SIGMA: f64 = 6.0;
    let ref_len = (images as f64).ln();
    let cider: Vec<f64> = first
        .par_iter()
        .map_init(Scratch::<K>::default, |s, (img, _, _)| {
            let refs = img.offs.len() - 2;
            let idf = |k: &K| ref_len - df.get(k).copied().unwrap_or(0.0);
            let hc = img.part(0);
            s.weights.clear();
            let mut h_norm = [0f64; 4];
            for (k, tf) in hc {
                let w = f64::from(*tf) * idf(k);
                s.weights.push(w);
                h_norm[k.order() - 1] += w * w;
            }
            h_norm.iter_mut().for_each(|v| *v = v.sqrt());
            let h_len = f64::from(img.bigrams[0]);
            let mut score = [0f64; 4];
            for j in 0..refs {
                let rc = img.part(j + 1);
                let mut r_norm = [0f64; 4];
                let mut val = [0f64; 4];
                let mut a = 0;
                for (k, tf) in rc {
                    let vr = f64::from(*tf) * idf(k);
                    let n = k.order() - 1;
                    r_norm[n] += vr * vr;
                    while a < hc.len() && hc[a].0 < *k {
                        a += 1;
                    }
                    if a < hc.len() && hc[a].0 == *k {
                        val[n] += s.weights[a].min(vr) * vr;
                        a += 1;
                    }
                }
                let delta = h_len - f64::from(img.bigrams[j + 1]);
                let penalty = std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
                for n in 0..4 {
                    let rn = r_norm[n].sqrt();
                    if h_norm[n] != 0.0 && rn != 0.0 {
                        val[n] /= h_norm[n] * rn;
                    }
                    score[n] += val[n] * penalty;
                }
            }
            let avg = (score[0] + score[1] + score[2] + score[3]) / 4.0 / refs as f64;
            avg * 10.0
        })
        .collect();
    eprintln!("pass2 {:?}", t0.elapsed());
    let (bleu, rouge) = first.into_iter().map(|(_, b, r)| (b, r)).unzip();
    Scores { bleu, rouge, cider }
}
