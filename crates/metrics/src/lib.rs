//! Captioning metrics with the exact numbers of the COCO caption evaluation toolkit
//! (pycocoevalcap): PTB tokenisation, BLEU-1..4, METEOR 1.5, ROUGE-L and CIDEr-D, plus paired
//! bootstrap resampling, decoding diagnostics and COCO / captions.txt loaders.
//!
//! # Signature
//!
//! Like sacrebleu, every set of scores should be reported with the [`Signature`] of how it was
//! computed, e.g.
//!
//! ```text
//! tok:ptb-3.4.1|meteor:full-1.5+1f2e3d4c|cider:D,sigma=6,df=corpus|bleu:closest|caplab-metrics:0.1.0
//! ```
//!
//! * `tok`: the tokenizer (CoreNLP 3.4.1's PTBLexer as pycocoevalcap runs it, see [`ptb`]);
//! * `meteor`: `off`, `exact+stem-1.5` (`,no-function-words` when the jar was not available) or
//!   `full-1.5+<hash8>`, the first 8 hex digits of the SHA-256 of the synonym and paraphrase
//!   resources ([`meteor::Meteor::resources_hash`]);
//! * `cider`: CIDEr-D, its Gaussian length penalty's sigma, and where document frequencies come
//!   from (`corpus`: the references of the evaluated set, as pycocoevalcap);
//! * `bleu`: the reference length rule (`closest`, ties to the shorter, as pycocoevalcap);
//! * `caplab-metrics`: this crate's version.
//!
//! `Signature::for_options(&opts)?.to_string()` gives the line; [`Signature::new`] builds it
//! from an already loaded METEOR scorer.
//!
//! # METEOR resource cache
//!
//! Full METEOR's synonym and paraphrase tables are parsed once and cached in a compact binary
//! file that later processes memory-map (see [`meteor_cache`]): in `$CAPLAB_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/caplab`, else `~/.cache/caplab`.

pub mod bleu;
pub mod bootstrap;
pub mod cider;
pub mod coco;
mod corpus;
pub mod diagnostics;
mod error;
mod hash;
pub mod meteor;
pub mod meteor_cache;
mod meteor_norm;
mod meteor_paraphrase;
mod meteor_synonym;
mod ngrams;
pub mod ptb;
pub mod rouge;
mod scoring;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use corpus::Corpus;
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

/// Tokenizer part of the [`Signature`].
pub const SIGNATURE_TOKENIZER: &str = "ptb-3.4.1";
/// CIDEr part of the [`Signature`]: CIDEr-D, sigma 6, document frequencies of the evaluated set.
pub const SIGNATURE_CIDER: &str = "D,sigma=6,df=corpus";
/// BLEU part of the [`Signature`]: the closest reference length, ties to the shorter.
pub const SIGNATURE_BLEU: &str = "closest";

/// How scores were computed (see the crate documentation); `Display` gives the one-line form
/// `tok:..|meteor:..|cider:..|bleu:..|caplab-metrics:..`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Tokenizer, e.g. `ptb-3.4.1`.
    pub tokenizer: String,
    /// METEOR mode: `off`, `exact+stem-1.5[,no-function-words]` or `full-1.5+<hash8>`.
    pub meteor: String,
    /// CIDEr variant, sigma and document-frequency source, e.g. `D,sigma=6,df=corpus`.
    pub cider: String,
    /// BLEU reference length rule, e.g. `closest`.
    pub bleu: String,
    /// Version of caplab-metrics.
    pub version: String,
}

impl Signature {
    /// The signature of scores computed with `meteor` (`None`: without METEOR).
    pub fn new(meteor: Option<&meteor::Meteor>) -> Signature {
        Signature {
            tokenizer: SIGNATURE_TOKENIZER.to_string(),
            meteor: meteor.map_or_else(|| "off".to_string(), meteor::Meteor::signature),
            cider: SIGNATURE_CIDER.to_string(),
            bleu: SIGNATURE_BLEU.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The signature of [`evaluate`] with `opts` (loads METEOR's resources, from the cache when
    /// possible, to hash them; once per process).
    pub fn for_options(opts: &EvalOptions) -> Result<Signature, MetricsError> {
        Ok(Signature::new(meteor_scorer(&opts.meteor)?.as_ref()))
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tok:{}|meteor:{}|cider:{}|bleu:{}|caplab-metrics:{}",
            self.tokenizer, self.meteor, self.cider, self.bleu, self.version
        )
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

/// The tokenised evaluation set as interned token ids.
pub struct TokenizedIds {
    /// Image ids, sorted.
    pub ids: Vec<String>,
    /// All references in image order, then one candidate per image.
    pub corpus: Corpus,
    /// Image i's references are captions `ref_start[i]..ref_start[i + 1]` of `corpus`.
    pub ref_start: Vec<u32>,
}

impl TokenizedIds {
    /// Already tokenised captions (tokens joined with spaces, e.g. pycocoevalcap tokenizer
    /// output), each caption as one "token": the scorers' own splits cut it into its words.
    pub fn from_tokenized(tok: &Tokenized) -> TokenizedIds {
        let mut vocab = Vec::new();
        let mut ref_start = vec![0u32];
        for rs in &tok.refs {
            vocab.extend(rs.iter().cloned());
            ref_start.push(vocab.len() as u32);
        }
        vocab.extend(tok.cands.iter().cloned());
        let n = vocab.len() as u32;
        TokenizedIds {
            ids: tok.ids.clone(),
            corpus: Corpus {
                vocab,
                toks: (0..n).collect(),
                bounds: (0..=n).collect(),
            },
            ref_start,
        }
    }

    /// Candidate caption index of image `i` in `corpus`.
    pub fn cand(&self, i: usize) -> usize {
        self.ref_start[self.ids.len()] as usize + i
    }
}

/// PTB-tokenises references and candidates into token ids as pycocoevalcap does (two runs of
/// the Java tokenizer: all references joined in image order, then all candidates).
pub fn tokenize_ids(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<TokenizedIds, MetricsError> {
    check_ids(refs, cands)?;
    let ids: Vec<String> = cands.keys().cloned().collect();
    let mut ref_start = Vec::with_capacity(ids.len() + 1);
    ref_start.push(0u32);
    let mut flat_refs: Vec<&str> = Vec::new();
    for id in &ids {
        flat_refs.extend(refs[id].iter().map(String::as_str));
        ref_start.push(flat_refs.len() as u32);
    }
    let flat_cands: Vec<&str> = cands.values().map(String::as_str).collect();
    let corpus = Corpus::tokenize(&[&flat_refs, &flat_cands]);
    Ok(TokenizedIds {
        ids,
        corpus,
        ref_start,
    })
}

/// PTB-tokenises references and candidates as pycocoevalcap does, as token strings.
pub fn tokenize_set(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<Tokenized, MetricsError> {
    let t = tokenize_ids(refs, cands)?;
    let c = &t.corpus;
    let cands = (0..t.ids.len()).map(|i| c.text(t.cand(i))).collect();
    let refs = t
        .ref_start
        .windows(2)
        .map(|w| (w[0] as usize..w[1] as usize).map(|s| c.text(s)).collect())
        .collect();
    Ok(Tokenized {
        ids: t.ids,
        cands,
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
