//! BLEU-1..4, ROUGE-L and CIDEr-D of a whole evaluation set in two parallel passes over
//! interned captions: n-grams (n <= 4) packed into integer keys once per caption and shared by
//! BLEU and CIDEr, per-thread scratch buffers, merge joins of sorted n-gram counts.

use crate::corpus::Corpus;
use crate::ngrams::matches;
use crate::rouge;
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
    /// A well-mixed 64-bit hash.
    fn hash64(self) -> u64;
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
    #[inline]
    fn hash64(self) -> u64 {
        self.wrapping_mul(0x9E37_79B9_7F4A_7C15)
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
    #[inline]
    fn hash64(self) -> u64 {
        ((self as u64) ^ ((self >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// An open-addressing hash table of packed n-grams (linear probing, Fibonacci hashing on the
/// high bits; key 0, which no n-gram packs to, marks an empty slot).
struct KeyTable<K, V> {
    slots: Vec<(K, V)>,
    len: usize,
    shift: u32,
}

impl<K: Key + Default, V: Copy + Default> KeyTable<K, V> {
    fn with_capacity(n: usize) -> Self {
        let cap = (2 * n).next_power_of_two().max(16);
        KeyTable {
            slots: vec![(K::default(), V::default()); cap],
            len: 0,
            shift: 64 - cap.trailing_zeros(),
        }
    }

    #[inline]
    fn slot(&self, k: K) -> usize {
        (k.hash64() >> self.shift) as usize
    }

    /// The value of `k`, if present.
    #[inline]
    fn get(&self, k: K) -> Option<V> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(k);
        loop {
            let (sk, v) = self.slots[i];
            if sk == k {
                return Some(v);
            }
            if sk == K::default() {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The value of `k`, inserted as the default when absent.
    #[inline]
    fn entry(&mut self, k: K) -> &mut V {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(k);
        loop {
            let sk = self.slots[i].0;
            if sk == k {
                break;
            }
            if sk == K::default() {
                self.slots[i].0 = k;
                self.len += 1;
                break;
            }
            i = (i + 1) & mask;
        }
        &mut self.slots[i].1
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, KeyTable::with_capacity(self.slots.len()));
        for (k, v) in old.iter() {
            *self.entry(k) = v;
        }
    }

    /// The entries, in no particular order.
    fn iter(&self) -> impl Iterator<Item = (K, V)> + '_ {
        self.slots
            .iter()
            .copied()
            .filter(|(k, _)| *k != K::default())
    }
}

/// Appends the n-gram keys (n = 1..=4) of `toks` to `keys`.
fn push_keys<K: Key>(toks: &[u32], keys: &mut Vec<K>) {
    for n in 1..=4 {
        keys.extend(toks.windows(n).map(K::pack));
    }
}

/// Appends the sorted n-gram counts (n = 1..=4) of `toks` to `out`, and to `first` the
/// indices of those counts (relative to where they start in `out`) in pycocoevalcap's dict
/// order: by order n, then by position of the n-gram's first occurrence.
fn push_counts<K: Key>(
    toks: &[u32],
    keys: &mut Vec<(K, u32)>,
    out: &mut Vec<(K, u32)>,
    first: &mut Vec<(u32, u32)>,
) {
    keys.clear();
    for n in 1..=4 {
        let base = keys.len() as u32;
        keys.extend(
            toks.windows(n)
                .enumerate()
                .map(|(p, w)| (K::pack(w), base + p as u32)),
        );
    }
    keys.sort_unstable();
    let start = out.len();
    first.clear();
    for &(k, pos) in keys.iter() {
        let len = out.len();
        match out.last_mut() {
            Some((last, c)) if len > start && *last == k => *c += 1,
            _ => {
                first.push((pos, (len - start) as u32));
                out.push((k, 1));
            }
        }
    }
}

/// Appends to `order` the indices given by `first` sorted by first occurrence.
fn push_order(first: &mut [(u32, u32)], order: &mut Vec<u32>) {
    first.sort_unstable();
    order.extend(first.iter().map(|&(_, i)| i));
}

/// Reused per-thread buffers.
#[derive(Default)]
struct Scratch<K> {
    keys: Vec<(K, u32)>,
    first: Vec<(u32, u32)>,
    /// Sorted n-gram counts of the candidate, then of each reference.
    counts: Vec<(K, u32)>,
    /// For each caption, the indices of its counts in pycocoevalcap's dict order (same
    /// offsets as `counts`).
    order: Vec<u32>,
    /// The reference's weight of each candidate n-gram (0 when absent).
    ref_w: Vec<f64>,
    /// Candidate: `counts[offs[0]..offs[1]]`, reference j: `counts[offs[j + 1]..offs[j + 2]]`.
    offs: Vec<usize>,
    clip: Vec<u32>,
    weights: Vec<f64>,
    prev: Vec<u32>,
    cur: Vec<u32>,
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

/// Images per parallel document-frequency chunk.
const DF_CHUNK: usize = 512;

/// CIDEr's idf weight `ln(images) - ln(max(df, 1))` of every n-gram of the references; n-grams
/// absent from every reference weigh `ln(images)`.
fn idf<K: Key + Default>(ws: &Corpus, ref_start: &[u32]) -> KeyTable<K, f64> {
    let images = ref_start.len() - 1;
    // Chunk-local counts of images containing each n-gram; `last` marks the image counted.
    let locals: Vec<KeyTable<K, (u32, u32)>> = (0..images)
        .into_par_iter()
        .with_min_len(DF_CHUNK)
        .fold(
            || {
                (
                    KeyTable::<K, (u32, u32)>::with_capacity(1024),
                    Vec::<K>::new(),
                )
            },
            |(mut map, mut keys), i| {
                keys.clear();
                for r in ref_start[i]..ref_start[i + 1] {
                    push_keys(ws.caption(r as usize), &mut keys);
                }
                let tag = i as u32 + 1;
                for &k in &keys {
                    let e = map.entry(k);
                    if e.1 != tag {
                        *e = (e.0 + 1, tag);
                    }
                }
                (map, keys)
            },
        )
        .map(|(map, _)| map)
        .collect();
    let mut locals = locals.into_iter();
    let mut df = locals.next().unwrap_or_else(|| KeyTable::with_capacity(0));
    for local in locals {
        for (k, (c, _)) in local.iter() {
            df.entry(k).0 += c;
        }
    }
    let ref_len = (images as f64).ln();
    let mut idf = KeyTable::with_capacity(df.len);
    for (k, (c, _)) in df.iter() {
        *idf.entry(k) = ref_len - f64::from(c.max(1)).ln();
    }
    idf
}

fn score_with<K: Key + Default>(ws: &Corpus, sp: &Corpus, ref_start: &[u32]) -> Scores {
    let images = ref_start.len() - 1;
    let n_refs = ref_start[images] as usize;
    let idf = idf::<K>(ws, ref_start);
    let ref_len = (images as f64).ln();
    let weight = |k: &K| idf.get(*k).unwrap_or(ref_len);
    let all: Vec<([f64; crate::bleu::STATS], f64, f64)> = (0..images)
        .into_par_iter()
        .map_init(Scratch::<K>::default, |s, i| {
            let refs = ref_start[i] as usize..ref_start[i + 1] as usize;
            let cand = ws.caption(n_refs + i);
            s.counts.clear();
            s.order.clear();
            s.offs.clear();
            s.offs.push(0);
            push_counts(cand, &mut s.keys, &mut s.counts, &mut s.first);
            push_order(&mut s.first, &mut s.order);
            s.offs.push(s.counts.len());
            for r in refs.clone() {
                push_counts(ws.caption(r), &mut s.keys, &mut s.counts, &mut s.first);
                push_order(&mut s.first, &mut s.order);
                s.offs.push(s.counts.len());
            }
            let counts = &s.counts;
            let offs = &s.offs;
            let part = |j: usize| &counts[offs[j]..offs[j + 1]];
            let order = |j: usize| &s.order[offs[j]..offs[j + 1]];
            let hc = part(0);

            // BLEU: clip candidate counts by the largest count in any single reference.
            s.clip.clear();
            s.clip.resize(hc.len(), 0);
            for j in 0..refs.len() {
                let rc = part(j + 1);
                let clip = &mut s.clip;
                matches(hc, rc, |a, b| clip[a] = clip[a].max(rc[b].1));
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
            let mut bleu = [0f64; crate::bleu::STATS];
            bleu[0] = testlen as f64;
            bleu[1] = reflen as f64;
            for n in 0..4 {
                bleu[2 + n] = (testlen + 1).saturating_sub(n + 1) as f64;
            }
            let mut correct = [0u32; 4];
            for (&(k, c), &clip) in hc.iter().zip(&s.clip) {
                correct[k.order() - 1] += c.min(clip);
            }
            for n in 0..4 {
                bleu[6 + n] = f64::from(correct[n]);
            }

            // CIDEr-D: TF-IDF cosine per order with a Gaussian length penalty (sigma 6).
            const SIGMA: f64 = 6.0;
            // Sums run in pycocoevalcap's dict order (see `push_counts`), so that the floating
            // point results are identical.
            s.weights.clear();
            s.weights
                .extend(hc.iter().map(|(k, tf)| f64::from(*tf) * weight(k)));
            let mut h_norm = [0f64; 4];
            for &a in order(0) {
                let w = s.weights[a as usize];
                h_norm[hc[a as usize].0.order() - 1] += w * w;
            }
            h_norm.iter_mut().for_each(|v| *v = v.sqrt());
            // CIDEr's "length" is the number of bigrams.
            let h_len = cand.len().saturating_sub(1) as f64;
            let mut score = [0f64; 4];
            for (j, r) in refs.clone().enumerate() {
                let rc = part(j + 1);
                let mut r_norm = [0f64; 4];
                for &b in order(j + 1) {
                    let (k, tf) = rc[b as usize];
                    let vr = f64::from(tf) * weight(&k);
                    r_norm[k.order() - 1] += vr * vr;
                }
                s.ref_w.clear();
                s.ref_w.resize(hc.len(), 0.0);
                let ref_w = &mut s.ref_w;
                matches(hc, rc, |a, b| {
                    ref_w[a] = f64::from(rc[b].1) * weight(&rc[b].0)
                });
                let mut val = [0f64; 4];
                for &a in order(0) {
                    let vr = s.ref_w[a as usize];
                    if vr != 0.0 {
                        val[hc[a as usize].0.order() - 1] += s.weights[a as usize].min(vr) * vr;
                    }
                }
                let delta = h_len - ws.caption(r).len().saturating_sub(1) as f64;
                let penalty = std::hint::black_box(std::f64::consts::E)
                    .powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
                for n in 0..4 {
                    let rn = r_norm[n].sqrt();
                    if h_norm[n] != 0.0 && rn != 0.0 {
                        val[n] /= h_norm[n] * rn;
                    }
                    score[n] += val[n] * penalty;
                }
            }
            let cider =
                (score[0] + score[1] + score[2] + score[3]) / 4.0 / refs.len() as f64 * 10.0;

            // ROUGE-L (beta 1.2), precision and recall maxima taken independently.
            let sc = sp.caption(n_refs + i);
            let rouge = rouge::from_lcs(
                sc.len(),
                refs.clone().map(|r| {
                    let rt = sp.caption(r);
                    let l = rouge::lcs_in(rt, sc, &mut s.prev, &mut s.cur);
                    (f64::from(l), rt.len())
                }),
            );
            (bleu, rouge, cider)
        })
        .collect();
    let mut out = Scores {
        bleu: Vec::with_capacity(images),
        rouge: Vec::with_capacity(images),
        cider: Vec::with_capacity(images),
    };
    for (b, r, c) in all {
        out.bleu.push(b);
        out.rouge.push(r);
        out.cider.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A corpus whose captions are the given token-id sequences.
    fn corpus(caps: &[Vec<u32>], vocab: usize) -> Corpus {
        let mut c = Corpus {
            vocab: (0..vocab).map(|i| i.to_string()).collect(),
            toks: Vec::new(),
            bounds: vec![0],
        };
        for cap in caps {
            c.toks.extend_from_slice(cap);
            c.bounds.push(c.toks.len() as u32);
        }
        c
    }

    #[test]
    fn joint_scores_match_the_per_image_metrics_with_both_key_widths() {
        // 40 images with 1..=5 references of pseudo-random words over a 12-word vocabulary.
        let mut x = 12345u64;
        let mut rnd = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % m) as u32
        };
        let mut refs: Vec<Vec<Vec<u32>>> = Vec::new();
        let mut cands: Vec<Vec<u32>> = Vec::new();
        for _ in 0..40 {
            let n = 1 + rnd(5) as usize;
            refs.push(
                (0..n)
                    .map(|_| (0..1 + rnd(9)).map(|_| rnd(12)).collect())
                    .collect(),
            );
            cands.push((0..rnd(10)).map(|_| rnd(12)).collect());
        }
        let mut caps: Vec<Vec<u32>> = refs.iter().flatten().cloned().collect();
        caps.extend(cands.iter().cloned());
        let mut ref_start = vec![0u32];
        for r in &refs {
            ref_start.push(ref_start.last().copied().unwrap_or(0) + r.len() as u32);
        }
        let c = corpus(&caps, 12);
        let want_cider = crate::cider::scores(&cands, &refs);
        for s in [
            score_with::<u64>(&c, &c, &ref_start),
            score_with::<u128>(&c, &c, &ref_start),
        ] {
            for i in 0..cands.len() {
                assert_eq!(
                    s.bleu[i],
                    crate::bleu::stats(&cands[i], &refs[i]),
                    "image {i}"
                );
                if !cands[i].is_empty() {
                    let r = crate::rouge::score(&cands[i], &refs[i]);
                    assert!((s.rouge[i] - r).abs() < 1e-12, "image {i}");
                }
                assert!((s.cider[i] - want_cider[i]).abs() < 1e-9, "image {i}");
            }
            assert!(s.cider.iter().any(|&v| v > 0.1), "{:?}", s.cider);
        }
    }

    #[test]
    fn key_table_grows_and_finds_every_key() {
        let mut t = KeyTable::<u64, u32>::with_capacity(1);
        for k in 1..5000u64 {
            *t.entry(k * 65537) += k as u32;
        }
        *t.entry(65537) += 1;
        assert_eq!(t.len, 4999);
        assert_eq!(t.get(65537), Some(2));
        assert_eq!(t.get(4999 * 65537), Some(4999));
        assert_eq!(t.get(3), None);
        assert_eq!(t.iter().count(), 4999);
    }
}
