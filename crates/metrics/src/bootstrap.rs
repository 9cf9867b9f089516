//! Paired bootstrap resampling over images: confidence intervals of each metric and of the
//! difference between two systems scored on the same images, with a two-sided p-value.
//!
//! Each resample draws images with replacement and recomputes the corpus score from the
//! per-image sufficient statistics (BLEU and METEOR from summed statistics, ROUGE-L and CIDEr
//! as means of per-image scores; CIDEr's document frequencies stay those of the full set).

use crate::error::MetricsError;
use crate::stats::{EvalStats, MetricStats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bootstrap settings.
#[derive(Clone, Debug)]
pub struct BootstrapOptions {
    /// Number of resamples.
    pub samples: usize,
    /// Confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// RNG seed (resampling is deterministic).
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            samples: 1000,
            confidence: 0.95,
            seed: 12345,
        }
    }
}

/// A point estimate with a percentile confidence interval.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Interval {
    /// The corpus value on the full set.
    pub estimate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// Comparison of two systems on one metric.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// System A.
    pub a: Interval,
    /// System B.
    pub b: Interval,
    /// B minus A.
    pub diff: Interval,
    /// Two-sided p-value of "no difference".
    pub p_value: f64,
}

fn resamples(n: usize, opts: &BootstrapOptions) -> Vec<Vec<usize>> {
    (0..opts.samples)
        .map(|s| {
            let mut rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(s as u64));
            (0..n).map(|_| rng.random_range(0..n)).collect()
        })
        .collect()
}

fn interval(estimate: f64, mut vals: Vec<f64>, confidence: f64) -> Interval {
    vals.sort_by(f64::total_cmp);
    if vals.is_empty() {
        return Interval {
            estimate,
            lower: estimate,
            upper: estimate,
        };
    }
    let alpha = (1.0 - confidence) / 2.0;
    let q = |p: f64| {
        let idx = ((p * vals.len() as f64).ceil() as usize).clamp(1, vals.len()) - 1;
        vals[idx]
    };
    Interval {
        estimate,
        lower: q(alpha),
        upper: q(1.0 - alpha),
    }
}

/// Two-sided p-value of "no difference" from resampled differences: twice the smaller share of
/// resamples on either side of 0 (at most 1; 1 without resamples).
fn p_value(diffs: &[f64]) -> f64 {
    if diffs.is_empty() {
        return 1.0;
    }
    let le = diffs.iter().filter(|d| **d <= 0.0).count();
    let ge = diffs.iter().filter(|d| **d >= 0.0).count();
    (2.0 * le.min(ge) as f64 / diffs.len() as f64).min(1.0)
}

/// Paired bootstrap of one metric between two groups of runs scored on the same `n` images (in
/// the same order): the difference (mean over `b`'s runs) − (mean over `a`'s runs), with the
/// corpus metric recomputed from the per-image statistics on every resample and the same
/// resampled images scoring every run. Returns the difference's percentile interval and the
/// two-sided p-value; `None` when a group is empty or there are no images. With one run per
/// group this is [`paired_bootstrap`]'s difference.
pub fn group_difference(
    a: &[&MetricStats],
    b: &[&MetricStats],
    n: usize,
    opts: &BootstrapOptions,
) -> Option<(Interval, f64)> {
    if a.is_empty() || b.is_empty() || n == 0 {
        return None;
    }
    let mean = |runs: &[&MetricStats], idx: &[usize]| {
        runs.iter()
            .map(|m| m.value_of(idx.iter().copied()))
            .sum::<f64>()
            / runs.len() as f64
    };
    let all: Vec<usize> = (0..n).collect();
    let estimate = mean(b, &all) - mean(a, &all);
    let diffs: Vec<f64> = resamples(n, opts)
        .par_iter()
        .map(|idx| mean(b, idx) - mean(a, idx))
        .collect();
    let p = p_value(&diffs);
    Some((interval(estimate, diffs, opts.confidence), p))
}

/// Confidence interval of every metric of one system.
pub fn bootstrap(a: &EvalStats, opts: &BootstrapOptions) -> BTreeMap<String, Interval> {
    let samples = resamples(a.ids.len(), opts);
    a.metrics
        .iter()
        .map(|m| {
            let vals: Vec<f64> = samples
                .par_iter()
                .map(|idx| m.value_of(idx.iter().copied()))
                .collect();
            (
                m.name.clone(),
                interval(m.corpus_value(), vals, opts.confidence),
            )
        })
        .collect()
}

/// Paired bootstrap of two systems scored on the same images (same ids, same metrics).
pub fn paired_bootstrap(
    a: &EvalStats,
    b: &EvalStats,
    opts: &BootstrapOptions,
) -> Result<BTreeMap<String, Comparison>, MetricsError> {
    if a.ids != b.ids {
        return Err(MetricsError::Mismatch(
            "the two systems were not scored on the same images".into(),
        ));
    }
    let samples = resamples(a.ids.len(), opts);
    let mut out = BTreeMap::new();
    for ma in &a.metrics {
        let Some(mb) = b.metrics.iter().find(|m| m.name == ma.name) else {
            continue;
        };
        let pairs: Vec<(f64, f64)> = samples
            .par_iter()
            .map(|idx| {
                (
                    ma.value_of(idx.iter().copied()),
                    mb.value_of(idx.iter().copied()),
                )
            })
            .collect();
        let (ea, eb) = (ma.corpus_value(), mb.corpus_value());
        let diffs: Vec<f64> = pairs.iter().map(|(x, y)| y - x).collect();
        let p_value = p_value(&diffs);
        out.insert(
            ma.name.clone(),
            Comparison {
                a: interval(ea, pairs.iter().map(|p| p.0).collect(), opts.confidence),
                b: interval(eb, pairs.iter().map(|p| p.1).collect(), opts.confidence),
                diff: interval(eb - ea, diffs, opts.confidence),
                p_value,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Aggregate, MetricStats};

    fn sys(scores: &[f64]) -> EvalStats {
        EvalStats {
            ids: (0..scores.len()).map(|i| i.to_string()).collect(),
            metrics: vec![MetricStats {
                name: "X".into(),
                aggregate: Aggregate::Mean,
                per_image: scores.iter().map(|s| vec![*s]).collect(),
            }],
        }
    }

    #[test]
    fn clear_difference_is_significant_and_identical_is_not() {
        let a: Vec<f64> = (0..200).map(|i| (i % 10) as f64 / 10.0).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 0.2).collect();
        let opts = BootstrapOptions {
            samples: 300,
            ..Default::default()
        };
        let c = &paired_bootstrap(&sys(&a), &sys(&b), &opts).unwrap()["X"];
        assert!((c.diff.estimate - 0.2).abs() < 1e-9);
        assert!(c.p_value < 0.01, "{c:?}");
        assert!(c.a.lower <= c.a.estimate && c.a.estimate <= c.a.upper);
        let same = &paired_bootstrap(&sys(&a), &sys(&a), &opts).unwrap()["X"];
        assert_eq!(same.p_value, 1.0);
        let one = bootstrap(&sys(&a), &opts);
        assert!(one["X"].lower < one["X"].upper);
    }
}
