//! Statistics of `caplab compare`: Student-t confidence intervals over seeds, and a paired
//! bootstrap over test images of the difference between two groups of runs
//! ([`significance_of`]), on per-image statistics recomputed from each run's captions
//! ([`per_image_stats`]).
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

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use caplab_metrics::{EvalOptions, EvalStats, MeteorMode, MetricStats};

use super::inputs::{read_captions, read_refs, RunData};

/// Significance level of the `n.s.` mark.
pub const ALPHA: f64 = 0.05;

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

/// A group against the baseline group.
#[derive(Clone, Debug)]
pub struct Significance {
    /// Index of the group in the comparison's groups.
    pub group: usize,
    /// How runs were paired, e.g. `by seed (3 pairs)`.
    pub pairing: String,
    /// Test images resampled.
    pub images: usize,
    /// Difference per metric (group − baseline).
    pub diffs: BTreeMap<String, Difference>,
    /// Why there are no differences, when there are none.
    pub note: Option<String>,
}

/// The METEOR a run's report was scored with, from its metric names.
fn meteor_mode_of(r: &RunData) -> MeteorMode {
    let dir = r.spec_value("eval.meteor_dir").map(PathBuf::from);
    let metrics = r.metrics();
    if metrics.contains_key(caplab_metrics::METEOR_FULL) {
        MeteorMode::best_available(dir)
    } else if metrics.contains_key(caplab_metrics::METEOR_EXACT_STEM) {
        MeteorMode::ExactStem { dir }
    } else {
        MeteorMode::Off
    }
}

/// Per-image sufficient statistics of a run's test captions, recomputed with caplab-metrics.
fn run_stats(r: &RunData) -> Result<EvalStats> {
    let cands = read_captions(&r.dir)?;
    let refs = read_refs(&r.dir)?;
    let opts = EvalOptions {
        meteor: meteor_mode_of(r),
    };
    caplab_metrics::evaluate_stats(&refs, &cands, &opts)
        .with_context(|| format!("scoring {}", r.dir.join("captions.json").display()))
}

/// Warns when the recomputed corpus metrics are not the report's.
fn check_recomputed(r: &RunData, s: &EvalStats, warnings: &mut Vec<String>) {
    let reported = r.metrics();
    for m in &s.metrics {
        if let Some(v) = reported.get(&m.name) {
            let again = m.corpus_value();
            if (again - v).abs() > 1e-9 * v.abs().max(1.0) {
                warnings.push(format!(
                    "{}: {} recomputed from captions.json is {again:.6}, report.json says {v:.6}",
                    r.label, m.name
                ));
            }
        }
    }
}

/// Per-image statistics of every run, in order: `None` (and a warning) for a run whose
/// captions or references cannot be scored, a warning where the recomputed corpus metrics are
/// not its report's.
pub fn per_image_stats(runs: &[RunData], warnings: &mut Vec<String>) -> Vec<Option<EvalStats>> {
    runs.iter()
        .map(|r| match run_stats(r) {
            Ok(s) => {
                check_recomputed(r, &s, warnings);
                Some(s)
            }
            Err(e) => {
                warnings.push(format!("{}: no bootstrap for this run: {e:#}", r.label));
                None
            }
        })
        .collect()
}

/// A metric's statistics restricted to `ids`, in that order.
fn restrict(stats: &EvalStats, name: &str, ids: &[String]) -> Option<MetricStats> {
    let m = stats.metrics.iter().find(|m| m.name == name)?;
    let pos: BTreeMap<&str, usize> = stats
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let per_image = ids
        .iter()
        .map(|id| pos.get(id.as_str()).map(|i| m.per_image[*i].clone()))
        .collect::<Option<Vec<_>>>()?;
    Some(MetricStats {
        name: m.name.clone(),
        aggregate: m.aggregate,
        per_image,
    })
}

/// What the bootstrap of every group against the baseline reads.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// The compared runs.
    pub runs: &'a [RunData],
    /// Each run's per-image statistics ([`per_image_stats`]; same order).
    pub stats: &'a [Option<EvalStats>],
    /// The metrics to compare.
    pub metrics: &'a [String],
    /// Resampling settings.
    pub settings: &'a BootstrapSettings,
}

/// Group `group`, whose runs are `group_runs` (indices into [`Evidence::runs`]), against the
/// baseline group's runs `baseline_runs`: runs with per-image statistics, paired by seed when
/// the groups share seeds, compared by [`paired_difference`] on the test images every compared
/// run was scored on.
pub fn significance_of(
    e: &Evidence,
    baseline_runs: &[usize],
    group: usize,
    group_runs: &[usize],
) -> Significance {
    let (runs, eval_stats) = (e.runs, e.stats);
    let mut out = Significance {
        group,
        pairing: String::new(),
        images: 0,
        diffs: BTreeMap::new(),
        note: None,
    };
    let usable = |v: &[usize]| -> Vec<usize> {
        v.iter()
            .copied()
            .filter(|i| eval_stats[*i].is_some())
            .collect()
    };
    let (mut a, mut b) = (usable(baseline_runs), usable(group_runs));
    // Pair by seed when the groups share seeds.
    let seeds_a: BTreeSet<u64> = a.iter().map(|i| runs[*i].seed()).collect();
    let seeds_b: BTreeSet<u64> = b.iter().map(|i| runs[*i].seed()).collect();
    let shared: BTreeSet<u64> = seeds_a.intersection(&seeds_b).copied().collect();
    if !shared.is_empty() {
        let keep = |v: &mut Vec<usize>| {
            let mut taken = BTreeSet::new();
            v.retain(|i| shared.contains(&runs[*i].seed()) && taken.insert(runs[*i].seed()));
        };
        keep(&mut a);
        keep(&mut b);
        out.pairing = format!("by seed ({} pairs)", shared.len());
    } else {
        out.pairing = format!("unpaired seeds ({} vs {} runs)", a.len(), b.len());
    }
    if a.is_empty() || b.is_empty() {
        out.note = Some("no run with captions.json and refs.json on one side".into());
        return out;
    }
    // The images every compared run was scored on.
    let mut ids: Option<BTreeSet<String>> = None;
    for i in a.iter().chain(&b) {
        if let Some(s) = &eval_stats[*i] {
            let set: BTreeSet<String> = s.ids.iter().cloned().collect();
            ids = Some(match ids {
                None => set,
                Some(prev) => prev.intersection(&set).cloned().collect(),
            });
        }
    }
    let ids: Vec<String> = ids.unwrap_or_default().into_iter().collect();
    if ids.is_empty() {
        out.note = Some("the runs share no test image".into());
        return out;
    }
    out.images = ids.len();
    for m in e.metrics {
        let side = |v: &[usize]| -> Option<Vec<MetricStats>> {
            v.iter()
                .map(|i| eval_stats[*i].as_ref().and_then(|s| restrict(s, m, &ids)))
                .collect()
        };
        let (Some(sa), Some(sb)) = (side(&a), side(&b)) else {
            continue;
        };
        let ra: Vec<&MetricStats> = sa.iter().collect();
        let rb: Vec<&MetricStats> = sb.iter().collect();
        if let Some(d) = paired_difference(&ra, &rb, ids.len(), e.settings) {
            out.diffs.insert(m.clone(), d);
        }
    }
    out
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

    fn seeded(seed: u64) -> RunData {
        let report = super::super::fixtures::report(seed, &[], &[], 1.0);
        super::super::fixtures::run(&format!("s{seed}"), report)
    }

    /// One metric `X` (a mean of per-image scores) on images `ids`.
    fn scored(ids: &[&str], values: &[f64]) -> Option<EvalStats> {
        Some(EvalStats {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            metrics: vec![mean_stats(values)],
        })
    }

    #[test]
    fn groups_pair_by_shared_seed_on_the_images_every_run_was_scored_on() {
        // Baseline: runs 0, 1 (seeds 1, 2); group 1: runs 2, 3 (seeds 2, 3). Seed 2 pairs up,
        // on the images both of its runs have (b, c, d), where the group is 0.1 better.
        let runs: Vec<RunData> = [1, 2, 2, 3].into_iter().map(seeded).collect();
        let stats = vec![
            scored(&["a", "b", "c", "d"], &[0.9, 0.9, 0.9, 0.9]),
            scored(&["a", "b", "c", "d"], &[0.1, 0.2, 0.3, 0.4]),
            scored(&["b", "c", "d", "e"], &[0.3, 0.4, 0.5, 0.0]),
            scored(&["b", "c", "d", "e"], &[0.0, 0.0, 0.0, 0.0]),
        ];
        let metrics = vec!["X".to_string(), "Y".to_string()];
        let settings = BootstrapSettings {
            samples: 200,
            ..Default::default()
        };
        let e = Evidence {
            runs: &runs,
            stats: &stats,
            metrics: &metrics,
            settings: &settings,
        };
        let s = significance_of(&e, &[0, 1], 1, &[2, 3]);
        assert_eq!(s.group, 1);
        assert_eq!(s.pairing, "by seed (1 pairs)");
        assert_eq!(s.images, 3);
        assert_eq!(s.note, None);
        let d = &s.diffs["X"];
        assert!((d.estimate - 0.1).abs() < 1e-12, "{d:?}");
        assert!(d.lower > 0.0 && d.p_value < ALPHA, "{d:?}");
        assert!(!s.diffs.contains_key("Y"), "a metric without statistics");

        // No shared seed: every usable run on each side, unpaired.
        let s = significance_of(&e, &[0], 1, &[3]);
        assert_eq!(s.pairing, "unpaired seeds (1 vs 1 runs)");
        assert_eq!(s.images, 3);
        // A side without statistics, and runs without a common image: a note, no difference.
        let missing = vec![None, stats[1].clone(), None, None];
        let s = significance_of(
            &Evidence {
                stats: &missing,
                ..e
            },
            &[0, 1],
            1,
            &[2, 3],
        );
        assert_eq!(
            s.note.as_deref(),
            Some("no run with captions.json and refs.json on one side")
        );
        assert!(s.diffs.is_empty() && s.images == 0);
        let apart = vec![stats[1].clone(), scored(&["z"], &[1.0])];
        let two = &runs[1..3];
        let s = significance_of(
            &Evidence {
                runs: two,
                stats: &apart,
                ..e
            },
            &[0],
            1,
            &[1],
        );
        assert_eq!(s.note.as_deref(), Some("the runs share no test image"));
    }
}
