//! Per-image sufficient statistics of every metric ([`EvalStats`]) and how they aggregate into
//! corpus and per-image scores ([`Evaluation`]): the input of bootstrap resampling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{bleu, meteor};

/// Corpus and per-image scores, keyed by metric name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    /// Corpus-level score of each metric.
    pub corpus: BTreeMap<String, f64>,
    /// Per-image score of each metric, keyed by image id.
    pub per_image: BTreeMap<String, BTreeMap<String, f64>>,
}

/// How per-image sufficient statistics combine into a corpus score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// BLEU-n (1..=4) from summed BLEU statistics.
    Bleu(usize),
    /// Mean of per-image scores (statistics are `[score]`).
    Mean,
    /// METEOR from summed METEOR statistics.
    Meteor,
}

/// Per-image sufficient statistics of one metric.
#[derive(Clone, Debug)]
pub struct MetricStats {
    /// Metric key, e.g. `"BLEU-4"`.
    pub name: String,
    /// How statistics aggregate.
    pub aggregate: Aggregate,
    /// One statistics vector per image, aligned with [`EvalStats::ids`].
    pub per_image: Vec<Vec<f64>>,
}

impl MetricStats {
    /// The metric value of a multiset of images given by their indices.
    pub fn value_of(&self, indices: impl IntoIterator<Item = usize>) -> f64 {
        if self.aggregate == Aggregate::Mean {
            // numpy's `np.mean`, as pycocoevalcap: pairwise summation, then one division.
            let v: Vec<f64> = indices.into_iter().map(|i| self.per_image[i][0]).collect();
            return if v.is_empty() {
                0.0
            } else {
                numpy_sum(&v) / v.len() as f64
            };
        }
        let dim = self.per_image.first().map_or(0, Vec::len);
        let mut sum = vec![0f64; dim];
        let mut count = 0usize;
        for i in indices {
            if self.aggregate == Aggregate::Meteor {
                // The jar adds 0 chunks for a fully matched single-chunk segment.
                let c = meteor::corpus_contribution(self.per_image[i].clone());
                for (s, v) in sum.iter_mut().zip(&c) {
                    *s += v;
                }
            } else {
                for (s, v) in sum.iter_mut().zip(&self.per_image[i]) {
                    *s += v;
                }
            }
            count += 1;
        }
        self.finish(&sum, count)
    }

    /// The metric value of one image.
    pub fn image_value(&self, i: usize) -> f64 {
        self.finish(&self.per_image[i], 1)
    }

    /// The corpus value over all images.
    pub fn corpus_value(&self) -> f64 {
        self.value_of(0..self.per_image.len())
    }

    fn finish(&self, sum: &[f64], count: usize) -> f64 {
        match self.aggregate {
            Aggregate::Bleu(n) => bleu::from_stats(sum)[n - 1],
            Aggregate::Mean => {
                if count == 0 {
                    0.0
                } else {
                    sum[0] / count as f64
                }
            }
            Aggregate::Meteor => meteor::score_from_stats(sum),
        }
    }
}

/// numpy's pairwise summation of a float64 array (`np.add.reduce`, blocks of 128, 8-way
/// unrolled), so that means equal pycocoevalcap's `np.mean` to the last bit.
pub fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &x| s + x)
    } else if n <= 128 {
        let mut r = [0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_sum(&a[..n2]) + numpy_sum(&a[n2..])
    }
}

/// Sufficient statistics of every metric for every image (the input of bootstrap resampling).
#[derive(Clone, Debug)]
pub struct EvalStats {
    /// Image ids in evaluation order (sorted).
    pub ids: Vec<String>,
    /// One entry per metric.
    pub metrics: Vec<MetricStats>,
}

impl EvalStats {
    /// Corpus and per-image scores.
    pub fn evaluation(&self) -> Evaluation {
        let corpus = self
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.corpus_value()))
            .collect();
        let per_image = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let scores = self
                    .metrics
                    .iter()
                    .map(|m| (m.name.clone(), m.image_value(i)))
                    .collect();
                (id.clone(), scores)
            })
            .collect();
        Evaluation { corpus, per_image }
    }
}
