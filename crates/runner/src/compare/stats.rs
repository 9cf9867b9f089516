//! Statistics of `caplab compare`: Student-t confidence intervals over seeds, and a paired
//! bootstrap over test images of the difference between two groups of runs.
//!
//! # Student t
//!
//! [`t_quantile`] inverts the exact Student-t distribution function of integer degrees of
//! freedom, written as the finite trigonometric series of Abramowitz & Stegun 26.7.3–4 (no
//! gamma function, no table), by bisection to machine precision.
//!
//! # Bootstrap
//!
//! [`paired_difference`] draws the test images with replacement (one index vector per
//! resample, shared by every run of both groups, so the comparison is paired over images) and
//! recomputes each run's *corpus* metric on the resample from its per-image sufficient
//! statistics ([`caplab_metrics::MetricStats::value_of`]): BLEU from summed n-gram match and
//! length counts, METEOR from summed segment statistics, ROUGE-L as a mean of per-image
//! scores, and CIDEr-D as a mean of per-image scores whose document frequencies are those of
//! the full test set's references. Document frequencies are kept, not recomputed per
//! resample: they are a property of the reference corpus, identical for both systems of a
//! pair, and a resample with replacement would count a drawn-twice image's references as two
//! documents, shifting the IDF weights by an artefact of resampling rather than of the
//! systems; keeping them is also what caplab-metrics' own bootstrap does.

use caplab_metrics::MetricStats;

/// `P(|T| ≤ t)` of Student's t with `dof` ≥ 1 degrees of freedom, for `t` ≥ 0
/// (Abramowitz & Stegun 26.7.3 and 26.7.4).
fn t_central(t: f64, dof: usize) -> f64 {
    let nu = dof as f64;
    let theta = (t / nu.sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    if dof % 2 == 1 {
        // 2/π [θ + sinθ cosθ (1 + 2/3 cos²θ + … + (2·4…(ν−3))/(3·5…(ν−2)) cos^(ν−3)θ)]
        let mut sum = 0.0;
        if dof > 1 {
            let mut term = 1.0;
            sum = 1.0;
            let mut k = 2usize;
            while k < dof - 1 {
                term *= k as f64 / (k + 1) as f64 * c2;
                sum += term;
                k += 2;
            }
        }
        (2.0 / std::f64::consts::PI) * (theta + s * c * sum)
    } else {
        // sinθ [1 + 1/2 cos²θ + (1·3)/(2·4) cos⁴θ + … + (1·3…(ν−3))/(2·4…(ν−2)) cos^(ν−2)θ]
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1usize;
        while k < dof - 1 {
            term *= k as f64 / (k + 1) as f64 * c2;
            sum += term;
            k += 2;
        }
        s * sum
    }
}

/// The distribution function `P(T ≤ t)` of Student's t with `dof` ≥ 1 degrees of freedom.
pub fn t_cdf(t: f64, dof: usize) -> f64 {
    let dof = dof.max(1);
    let a = t_central(t.abs(), dof);
    if t >= 0.0 {
        0.5 + a / 2.0
    } else {
        0.5 - a / 2.0
    }
}

/// The `p` quantile of Student's t with `dof` ≥ 1 degrees of freedom (`p` in (0, 1)),
/// e.g. `t_quantile(0.975, 2)` = 4.302653.
pub fn t_quantile(p: f64, dof: usize) -> f64 {
    if p.is_nan() || p <= 0.0 || p >= 1.0 {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, dof);
    }
    let dof = dof.max(1);
    let target = 2.0 * p - 1.0;
    let mut hi = 1.0;
    while t_central(hi, dof) < target && hi < 1e300 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_central(mid, dof) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Mean, sample standard deviation and Student-t confidence interval of a few values.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); `None` for one value.
    pub std: Option<f64>,
    /// The confidence interval `mean ± t(1 − α/2, n − 1)·std/√n`; `None` for one value.
    pub ci: Option<(f64, f64)>,
}

/// [`Summary`] of `values` at `confidence` (e.g. 0.95); `None` when empty.
pub fn summarize(values: &[f64], confidence: f64) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(Summary {
            n,
            mean,
            std: None,
            ci: None,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / (n as f64).sqrt();
    Some(Summary {
        n,
        mean,
        std: Some(std),
        ci: Some((mean - half, mean + half)),
    })
}

/// Bootstrap settings.
#[derive(Clone, Debug)]
pub struct BootstrapSettings {
    /// Number of resamples.
    pub samples: usize,
    /// Seed of the resampling (the output is reproducible).
    pub seed: u64,
    /// Confidence level of the interval, e.g. 0.95.
    pub confidence: f64,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self {
            samples: 1000,
            seed: 12345,
            confidence: 0.95,
        }
    }
}

/// The difference of a metric between two groups, with its bootstrap interval and p-value.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// Mean over group B's runs minus mean over group A's runs, on the full test set.
    pub estimate: f64,
    /// Lower end of the percentile interval.
    pub lower: f64,
    /// Upper end of the percentile interval.
    pub upper: f64,
    /// Two-sided p-value of "no difference": twice the smaller share of resamples on either
    /// side of 0 (at most 1).
    pub p_value: f64,
}

/// Paired bootstrap over `n` test images of (mean of `b`'s runs) − (mean of `a`'s runs) of one
/// metric: caplab-metrics' [`group_difference`](caplab_metrics::bootstrap::group_difference).
/// Every [`MetricStats`] must hold the same `n` images in the same order (see the module
/// documentation for how each metric is recomputed).
pub fn paired_difference(
    a: &[&MetricStats],
    b: &[&MetricStats],
    n: usize,
    settings: &BootstrapSettings,
) -> Option<Difference> {
    let opts = caplab_metrics::bootstrap::BootstrapOptions {
        samples: settings.samples,
        confidence: settings.confidence,
        seed: settings.seed,
    };
    let (interval, p_value) = caplab_metrics::bootstrap::group_difference(a, b, n, &opts)?;
    Some(Difference {
        estimate: interval.estimate,
        lower: interval.lower,
        upper: interval.upper,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use caplab_metrics::Aggregate;

    #[test]
    fn t_quantiles_match_published_values() {
        for (p, dof, want) in [
            (0.975, 1, 12.706205),
            (0.975, 2, 4.302653),
            (0.975, 3, 3.182446),
            (0.975, 4, 2.776445),
            (0.975, 10, 2.228139),
            (0.975, 29, 2.045230),
            (0.975, 120, 1.979930),
            (0.995, 5, 4.032143),
            (0.95, 7, 1.894579),
        ] {
            let got = t_quantile(p, dof);
            assert!(
                (got - want).abs() < 5e-6,
                "t({p}, {dof}) = {got}, want {want}"
            );
        }
        assert!((t_quantile(0.025, 2) + 4.302653).abs() < 5e-6);
        assert_eq!(t_quantile(0.5, 9), 0.0);
        // Cauchy (1 dof) closed form, and the CDF inverts the quantile.
        assert!((t_cdf(1.0, 1) - 0.75).abs() < 1e-15);
        for dof in [1, 2, 5, 30] {
            let t = t_quantile(0.9, dof);
            assert!((t_cdf(t, dof) - 0.9).abs() < 1e-12, "dof {dof}");
        }
        assert!(t_quantile(1.0, 3).is_nan());
    }

    #[test]
    fn summary_of_three_values() {
        let s = summarize(&[10.0, 12.0, 14.0], 0.95).expect("values");
        assert_eq!(s.mean, 12.0);
        assert_eq!(s.std, Some(2.0));
        let (lo, hi) = s.ci.expect("ci");
        let half = 4.302653 * 2.0 / 3f64.sqrt();
        assert!((lo - (12.0 - half)).abs() < 1e-5 && (hi - (12.0 + half)).abs() < 1e-5);
        let one = summarize(&[3.0], 0.95).expect("one");
        assert_eq!((one.std, one.ci), (None, None));
        assert!(summarize(&[], 0.95).is_none());
    }

    fn mean_stats(v: &[f64]) -> MetricStats {
        MetricStats {
            name: "X".into(),
            aggregate: Aggregate::Mean,
            per_image: v.iter().map(|x| vec![*x]).collect(),
        }
    }

    #[test]
    fn bootstrap_finds_a_shift_and_not_an_identity() {
        let a: Vec<f64> = (0..100).map(|i| (i % 7) as f64 / 7.0).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 0.1).collect();
        let (sa, sb) = (mean_stats(&a), mean_stats(&b));
        let settings = BootstrapSettings {
            samples: 200,
            ..Default::default()
        };
        let d = paired_difference(&[&sa], &[&sb], 100, &settings).expect("diff");
        assert!((d.estimate - 0.1).abs() < 1e-12);
        assert!(d.p_value < 0.01 && d.lower > 0.0, "{d:?}");
        let same = paired_difference(&[&sa], &[&sa], 100, &settings).expect("same");
        assert_eq!(same.p_value, 1.0);
        let again = paired_difference(&[&sa], &[&sb], 100, &settings).expect("diff");
        assert_eq!(d, again, "fixed seed, same output");
    }
}
