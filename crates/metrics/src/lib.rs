//! Captioning metrics with the exact numbers of the COCO caption evaluation toolkit
//! (pycocoevalcap): PTB tokenisation, BLEU-1..4, METEOR 1.5, ROUGE-L and CIDEr-D, plus paired
//! bootstrap resampling, decoding diagnostics and COCO / captions.txt loaders.

pub mod bleu;
pub mod bootstrap;
pub mod cider;
pub mod coco;
pub mod diagnostics;
mod error;
mod hash;
pub mod meteor;
mod meteor_norm;
mod meteor_paraphrase;
mod meteor_synonym;
mod ngrams;
pub mod ptb;
pub mod rouge;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use error::MetricsError;
pub use ptb::{ptb_tokenize, ptb_tokenize_lines};

/// Metric key of the full METEOR 1.5 (exact, stem, synonym, paraphrase).
pub const METEOR_FULL: &str = "METEOR";
/// Metric key of METEOR computed with the exact and stem modules only.
pub const METEOR_EXACT_STEM: &str = "METEOR(exact+stem)";

/// Which METEOR to compute.
#[derive(Clone, Debug, Default)]
pub enum MeteorMode {
    /// No METEOR.
    #[default]
    Off,
    /// Exact and stem modules only, reported as `METEOR(exact+stem)`. The jar's function words
    /// are read from `dir/meteor-1.5.jar` (else `$CAPLAB_METEOR_DIR`) when set; otherwise none
    /// are used (see [`meteor`]).
    ExactStem {
        /// The METEOR distribution directory, if any.
        dir: Option<PathBuf>,
    },
    /// Full METEOR 1.5 with the resources of the distribution in `dir` (the directory holding
    /// `meteor-1.5.jar` and `data/paraphrase-en.gz`).
    Full {
        /// The METEOR distribution directory.
        dir: PathBuf,
    },
}

impl MeteorMode {
    /// The most complete METEOR this build computes with the resources in `dir`
    /// (or `$CAPLAB_METEOR_DIR`): full METEOR 1.5 when its modules are available, else
    /// exact+stem, labelled `METEOR(exact+stem)`.
    pub fn best_available(dir: Option<PathBuf>) -> MeteorMode {
        let dir = dir.or_else(|| std::env::var_os("CAPLAB_METEOR_DIR").map(PathBuf::from));
        match dir {
            Some(d) if meteor::Meteor::full_available(&d).is_ok() => MeteorMode::Full { dir: d },
            dir => MeteorMode::ExactStem { dir },
        }
    }
}

/// Options of [`evaluate`].
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Which METEOR to compute.
    pub meteor: MeteorMode,
}

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

/// Scores raw candidates against raw references (both keyed by image id) exactly as
/// pycocoevalcap does, tokenising them first.
pub fn evaluate(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
    opts: &EvalOptions,
) -> Result<Evaluation, MetricsError> {
    Ok(evaluate_stats(refs, cands, opts)?.evaluation())
}

/// Checks that candidates and references cover the same images.
fn check_ids(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<(), MetricsError> {
    if let Some(id) = cands
        .keys()
        .find(|id| refs.get(*id).is_none_or(|r| r.is_empty()))
    {
        return Err(MetricsError::UnknownImage(id.clone()));
    }
    if let Some(id) = refs.keys().find(|id| !cands.contains_key(*id)) {
        return Err(MetricsError::MissingCandidate(id.clone()));
    }
    if cands.is_empty() {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

/// Tokenised captions of the evaluated set, in image order.
pub struct Tokenized {
    /// Image ids.
    pub ids: Vec<String>,
    /// Tokenised candidate of each image (tokens joined with single spaces).
    pub cands: Vec<String>,
    /// Tokenised references of each image.
    pub refs: Vec<Vec<String>>,
}

/// PTB-tokenises references and candidates as pycocoevalcap does (two runs of the Java
/// tokenizer: all references joined in image order, then all candidates).
pub fn tokenize_set(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<Tokenized, MetricsError> {
    check_ids(refs, cands)?;
    let ids: Vec<String> = cands.keys().cloned().collect();
    let flat_refs: Vec<&str> = ids
        .iter()
        .flat_map(|id| refs[id].iter().map(|s| s.as_str()))
        .collect();
    let flat_cands: Vec<&str> = ids.iter().map(|id| cands[id].as_str()).collect();
    let mut tok_refs = ptb_tokenize_lines(&flat_refs)
        .into_iter()
        .map(|t| t.join(" "));
    let tok_cands = ptb_tokenize_lines(&flat_cands)
        .into_iter()
        .map(|t| t.join(" "))
        .collect();
    let refs = ids
        .iter()
        .map(|id| {
            (0..refs[id].len())
                .filter_map(|_| tok_refs.next())
                .collect()
        })
        .collect();
    Ok(Tokenized {
        ids,
        cands: tok_cands,
        refs,
    })
}

/// Python's `str.split()` whitespace.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Computes the per-image sufficient statistics of every metric.
pub fn evaluate_stats(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
    opts: &EvalOptions,
) -> Result<EvalStats, MetricsError> {
    let tok = tokenize_set(refs, cands)?;
    stats_of_tokenized(&tok, opts)
}

/// Computes the statistics of already tokenised captions (pycocoevalcap's scorers on the
/// output of its tokenizer).
pub fn stats_of_tokenized(tok: &Tokenized, opts: &EvalOptions) -> Result<EvalStats, MetricsError> {
    let meteor_scorer = match &opts.meteor {
        MeteorMode::Off => None,
        MeteorMode::ExactStem { dir: Some(dir) } => {
            Some(meteor::Meteor::exact_stem_with(Some(dir))?)
        }
        MeteorMode::ExactStem { dir: None } => Some(meteor::Meteor::exact_stem()?),
        MeteorMode::Full { dir } => Some(meteor::Meteor::full(dir)?),
    };
    let mut vocab = ngrams::Vocab::default();
    // BLEU and CIDEr split on whitespace, ROUGE-L on single spaces.
    let mut ws = |s: &str| vocab.ids(s.split(py_space).filter(|t| !t.is_empty()));
    let cands_ws: Vec<Vec<u32>> = tok.cands.iter().map(|s| ws(s)).collect();
    let refs_ws: Vec<Vec<Vec<u32>>> = tok
        .refs
        .iter()
        .map(|rs| rs.iter().map(|s| ws(s)).collect())
        .collect();
    let mut sp = |s: &str| vocab.ids(s.split(' '));
    let cands_sp: Vec<Vec<u32>> = tok.cands.iter().map(|s| sp(s)).collect();
    let refs_sp: Vec<Vec<Vec<u32>>> = tok
        .refs
        .iter()
        .map(|rs| rs.iter().map(|s| sp(s)).collect())
        .collect();

    let bleu: Vec<Vec<f64>> = cands_ws
        .par_iter()
        .zip(refs_ws.par_iter())
        .map(|(c, r)| bleu::stats(c, r).to_vec())
        .collect();
    let rouge: Vec<Vec<f64>> = cands_sp
        .par_iter()
        .zip(refs_sp.par_iter())
        .map(|(c, r)| vec![rouge::score(c, r)])
        .collect();
    let cider: Vec<Vec<f64>> = cider::scores(&cands_ws, &refs_ws)
        .into_iter()
        .map(|s| vec![s])
        .collect();

    let mut metrics = Vec::new();
    for n in 1..=4 {
        metrics.push(MetricStats {
            name: format!("BLEU-{n}"),
            aggregate: Aggregate::Bleu(n),
            per_image: bleu.clone(),
        });
    }
    if let Some(m) = meteor_scorer {
        let per_image: Vec<Vec<f64>> = tok
            .cands
            .par_iter()
            .zip(tok.refs.par_iter())
            .map(|(c, r)| m.segment_stats(c, r))
            .collect();
        metrics.push(MetricStats {
            name: m.metric_name().to_string(),
            aggregate: Aggregate::Meteor,
            per_image,
        });
    }
    metrics.push(MetricStats {
        name: "ROUGE-L".into(),
        aggregate: Aggregate::Mean,
        per_image: rouge,
    });
    metrics.push(MetricStats {
        name: "CIDEr".into(),
        aggregate: Aggregate::Mean,
        per_image: cider,
    });
    Ok(EvalStats {
        ids: tok.ids.clone(),
        metrics,
    })
}
