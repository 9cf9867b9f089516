//! Scoring a set exactly as pycocoevalcap does: which METEOR to compute ([`MeteorMode`],
//! [`EvalOptions`]), then BLEU-1..4, METEOR, ROUGE-L and CIDEr-D statistics of raw
//! ([`evaluate_stats`]) or already tokenised captions ([`stats_of_tokenized`], [`stats_of_ids`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::MetricsError;
use crate::meteor;
use crate::scoring;
use crate::stats::{Aggregate, EvalStats, Evaluation, MetricStats};
use crate::tokenized::{tokenize_ids, Tokenized, TokenizedIds};

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

/// The METEOR scorer of a mode (`None` for [`MeteorMode::Off`]).
pub fn meteor_scorer(mode: &MeteorMode) -> Result<Option<meteor::Meteor>, MetricsError> {
    Ok(match mode {
        MeteorMode::Off => None,
        MeteorMode::ExactStem { dir: Some(dir) } => {
            Some(meteor::Meteor::exact_stem_with(Some(dir))?)
        }
        MeteorMode::ExactStem { dir: None } => Some(meteor::Meteor::exact_stem()?),
        MeteorMode::Full { dir } => Some(meteor::Meteor::full(dir)?),
    })
}

/// Options of [`evaluate`].
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Which METEOR to compute.
    pub meteor: MeteorMode,
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
    let tok = tokenize_ids(refs, cands)?;
    stats_of_ids(&tok, opts)
}

/// Computes the statistics of already tokenised captions (pycocoevalcap's scorers on the
/// output of its tokenizer).
pub fn stats_of_tokenized(tok: &Tokenized, opts: &EvalOptions) -> Result<EvalStats, MetricsError> {
    stats_of_ids(&TokenizedIds::from_tokenized(tok), opts)
}

/// METEOR segment statistics of every image of a tokenised set, in image order.
pub fn meteor_segment_stats(m: &meteor::Meteor, tok: &TokenizedIds) -> Vec<Vec<f64>> {
    m.tokenized_stats(tok)
}

/// Computes the statistics of a tokenised set.
pub fn stats_of_ids(tok: &TokenizedIds, opts: &EvalOptions) -> Result<EvalStats, MetricsError> {
    let meteor_scorer = meteor_scorer(&opts.meteor)?;
    // BLEU and CIDEr split the joined tokens on whitespace, ROUGE-L on single spaces.
    let (ws, sp) = rayon::join(
        || {
            tok.corpus.resplit(
                |w| w.split(py_space).filter(|t| !t.is_empty()).collect(),
                &[],
            )
        },
        || tok.corpus.resplit(|w| w.split(' ').collect(), &[""]),
    );
    let scores = scoring::score(&ws, &sp, &tok.ref_start);
    let bleu: Vec<Vec<f64>> = scores.bleu.iter().map(|b| b.to_vec()).collect();

    let mut metrics = Vec::new();
    for n in 1..=4 {
        metrics.push(MetricStats {
            name: format!("BLEU-{n}"),
            aggregate: Aggregate::Bleu(n),
            per_image: bleu.clone(),
        });
    }
    if let Some(m) = meteor_scorer {
        let per_image = meteor_segment_stats(&m, tok);
        metrics.push(MetricStats {
            name: m.metric_name().to_string(),
            aggregate: Aggregate::Meteor,
            per_image,
        });
    }
    metrics.push(MetricStats {
        name: "ROUGE-L".into(),
        aggregate: Aggregate::Mean,
        per_image: scores.rouge.into_iter().map(|s| vec![s]).collect(),
    });
    metrics.push(MetricStats {
        name: "CIDEr".into(),
        aggregate: Aggregate::Mean,
        per_image: scores.cider.into_iter().map(|s| vec![s]).collect(),
    });
    Ok(EvalStats {
        ids: tok.ids.clone(),
        metrics,
    })
}
