//! Dataset checking: every problem of a dataset at once ([`Problems`], collected by
//! [`crate::load::check_dataset`]) and a statistics table ([`DatasetStats`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rayon::prelude::*;

use crate::dataset::{CaptionDataset, Split};
use crate::error::DataError;
use crate::tokenizer::{Tokenizer, TokenizerConfig};
use crate::vocab::{Vocab, VocabConfig};

/// How bad a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The dataset cannot be used as it is: [`crate::load::load_dataset`] fails.
    Error,
    /// Worth knowing (e.g. images dropped because no split file lists them); loading goes on.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found while reading a dataset; the error names the file and line or entry.
#[derive(Debug)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, and where.
    pub error: DataError,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.error)
    }
}

/// A collector of problems: readers push into it and go on with the next line or entry.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Records an error.
    pub fn error(&mut self, error: DataError) {
        self.list.push(Problem {
            severity: Severity::Error,
            error,
        });
    }

    /// Records a warning.
    pub fn warning(&mut self, error: DataError) {
        self.list.push(Problem {
            severity: Severity::Warning,
            error,
        });
    }

    /// Records a problem of the given severity.
    pub fn push(&mut self, severity: Severity, error: DataError) {
        self.list.push(Problem { severity, error });
    }

    /// Number of errors recorded so far.
    pub fn error_count(&self) -> usize {
        self.list
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// All problems, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.list.iter()
    }

    /// All problems, in the order they were found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.list
    }

    /// `Ok(value)` when no error was recorded (warnings are logged); else the single error, or
    /// [`DataError::Problems`] listing them all.
    pub fn into_result<T>(self, value: T) -> Result<T, DataError> {
        let mut errors = Vec::new();
        for p in self.list {
            match p.severity {
                Severity::Error => errors.push(p.error),
                Severity::Warning => tracing::warn!("{}", p.error),
            }
        }
        match errors.len() {
            0 => Ok(value),
            1 => Err(errors.remove(0)),
            _ => Err(DataError::Problems(errors)),
        }
    }
}

/// The first few names of a list, for counted warnings: `a, b, c, … (N in all)`.
pub(crate) fn examples(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(", … ({} in all)", names.len()));
    }
    out
}

/// Caption-length percentiles of one split, in tokens of [`tokenize`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LengthStats {
    /// Shortest caption.
    pub min: usize,
    /// Median.
    pub p50: usize,
    /// 90th percentile.
    pub p90: usize,
    /// 95th percentile.
    pub p95: usize,
    /// 99th percentile.
    pub p99: usize,
    /// Longest caption.
    pub max: usize,
    /// Mean length.
    pub mean: f64,
}

impl LengthStats {
    /// Nearest-rank percentiles of `lengths` (sorted here); all zero when empty.
    pub fn from_lengths(mut lengths: Vec<usize>) -> Self {
        if lengths.is_empty() {
            return Self::default();
        }
        lengths.sort_unstable();
        let n = lengths.len();
        // Nearest rank: the smallest value with at least q·n values at or below it.
        let at = |q: f64| lengths[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        LengthStats {
            min: lengths[0],
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            max: lengths[n - 1],
            mean: lengths.iter().sum::<usize>() as f64 / n as f64,
        }
    }
}

/// Counts of one split.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitStats {
    /// Number of images.
    pub images: usize,
    /// Number of captions.
    pub captions: usize,
    /// Caption lengths in tokens.
    pub lengths: LengthStats,
    /// Tokens of this split's captions.
    pub tokens: usize,
    /// Tokens absent from the train vocabulary (what becomes `<unk>`; 0 for train).
    pub oov_tokens: usize,
}

impl SplitStats {
    /// Share of tokens outside the train vocabulary, 0–1 (0 for an empty split).
    pub fn oov_rate(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.oov_tokens as f64 / self.tokens as f64
        }
    }
}

/// What `caplab data check` prints: sizes, caption lengths, captions per image, vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetStats {
    /// Dataset name.
    pub name: String,
    /// Train, val and test, in [`Split::ALL`] order.
    pub splits: [SplitStats; 3],
    /// Number of captions per image → number of images with that many.
    pub captions_per_image: BTreeMap<usize, usize>,
    /// The tokenizer the lengths, vocabulary and OOV counts are in.
    pub tokenizer: TokenizerConfig,
    /// The vocabulary settings the size below is for (words only).
    pub vocab_config: VocabConfig,
    /// Vocabulary size, including the special tokens: built from the train words at
    /// `vocab_config`, or the WordPiece tokenizer's own.
    pub vocab_size: usize,
    /// Distinct tokens (words or WordPiece pieces) of the train captions (for words: before
    /// `min_freq` / `max_size`).
    pub train_word_types: usize,
}

impl DatasetStats {
    /// Computes the statistics of `ds` in the tokens of `tokenizer`, with the vocabulary a run
    /// of these settings has: built from the train split's words ([`Vocab::for_tokenizer`]),
    /// or the WordPiece tokenizer's own (an error names the tokenizer file, or the vocabulary
    /// settings a WordPiece vocabulary does not take).
    pub fn compute(
        ds: &CaptionDataset,
        tokenizer: &TokenizerConfig,
        vocab_config: &VocabConfig,
    ) -> Result<Self, DataError> {
        // A WordPiece vocabulary is fixed before any caption is read; a word one is counted.
        let fixed = match tokenizer {
            TokenizerConfig::Words => None,
            TokenizerConfig::Wordpiece(_) => {
                Some(Vocab::for_tokenizer(tokenizer, [], vocab_config)?)
            }
        };
        let loaded: Tokenizer = fixed
            .as_ref()
            .map_or(Tokenizer::Words, |v| v.tokenizer().clone());
        let tokens_of = |caption: &str| loaded.tokens(caption);
        // Every caption is tokenized once, in parallel: train captions into token counts (the
        // vocabulary, as `Vocab::build` counts them) and lengths, val/test into lengths and OOV.
        let captions_of = |split| -> Vec<&str> {
            ds.images
                .iter()
                .filter(|r| r.split == split)
                .flat_map(|r| r.captions.iter().map(String::as_str))
                .collect()
        };
        let train = captions_of(Split::Train);
        let (counts, train_lengths) = train
            .par_iter()
            .fold(
                || (HashMap::<String, usize>::new(), Vec::new()),
                |(mut counts, mut lengths), caption| {
                    let tokens = tokens_of(caption);
                    lengths.push(tokens.len());
                    for t in tokens {
                        *counts.entry(t).or_insert(0) += 1;
                    }
                    (counts, lengths)
                },
            )
            .reduce(
                || (HashMap::new(), Vec::new()),
                |(mut a, mut la), (mut b, mut lb)| {
                    if a.len() < b.len() {
                        std::mem::swap(&mut a, &mut b);
                    }
                    for (word, n) in b {
                        *a.entry(word).or_insert(0) += n;
                    }
                    la.append(&mut lb);
                    (a, la)
                },
            );
        let train_word_types = counts.len();
        let vocab = fixed.unwrap_or_else(|| Vocab::from_counts(counts, vocab_config));
        let splits = Split::ALL.map(|split| {
            let images = ds.split_len(split);
            if split == Split::Train {
                return SplitStats {
                    images,
                    captions: train.len(),
                    tokens: train_lengths.iter().sum(),
                    oov_tokens: 0,
                    lengths: LengthStats::from_lengths(train_lengths.clone()),
                };
            }
            let captions = captions_of(split);
            let per_caption: Vec<(usize, usize)> = captions
                .par_iter()
                .map(|c| {
                    let toks = tokens_of(c);
                    let oov = toks.iter().filter(|t| vocab.id(t).is_none()).count();
                    (toks.len(), oov)
                })
                .collect();
            SplitStats {
                images,
                captions: captions.len(),
                tokens: per_caption.iter().map(|p| p.0).sum(),
                oov_tokens: per_caption.iter().map(|p| p.1).sum(),
                lengths: LengthStats::from_lengths(per_caption.iter().map(|p| p.0).collect()),
            }
        });
        let mut captions_per_image = BTreeMap::new();
        for r in &ds.images {
            *captions_per_image.entry(r.captions.len()).or_insert(0) += 1;
        }
        Ok(DatasetStats {
            name: ds.name.clone(),
            splits,
            captions_per_image,
            tokenizer: tokenizer.clone(),
            vocab_config: vocab_config.clone(),
            vocab_size: vocab.len(),
            train_word_types,
        })
    }
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset {}", self.name)?;
        writeln!(
            f,
            "{:<6} {:>8} {:>9}  {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>6}  {:>7}",
            "split", "images", "captions", "min", "p50", "p90", "p95", "p99", "max", "mean", "OOV"
        )?;
        let mut total = SplitStats::default();
        for (split, s) in Split::ALL.iter().zip(&self.splits) {
            total.images += s.images;
            total.captions += s.captions;
            let oov = if *split == Split::Train {
                "-".to_string()
            } else {
                format!("{:.2}%", 100.0 * s.oov_rate())
            };
            let l = &s.lengths;
            writeln!(
                f,
                "{:<6} {:>8} {:>9}  {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>6.2}  {:>7}",
                split.as_str(),
                s.images,
                s.captions,
                l.min,
                l.p50,
                l.p90,
                l.p95,
                l.p99,
                l.max,
                l.mean,
                oov
            )?;
        }
        writeln!(
            f,
            "{:<6} {:>8} {:>9}",
            "total", total.images, total.captions
        )?;
        match &self.tokenizer {
            TokenizerConfig::Words => writeln!(
                f,
                "caption lengths in words; OOV: val/test words outside the train vocabulary"
            )?,
            TokenizerConfig::Wordpiece(_) => writeln!(
                f,
                "caption lengths in WordPiece pieces; OOV: val/test pieces the tokenizer \
                 leaves unknown"
            )?,
        }
        let hist: Vec<String> = self
            .captions_per_image
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        writeln!(
            f,
            "captions per image (captions: images): {}",
            hist.join(", ")
        )?;
        match &self.tokenizer {
            TokenizerConfig::Words => {
                let max_size = self
                    .vocab_config
                    .max_size
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "none".to_string());
                writeln!(
                    f,
                    "vocabulary: {} tokens incl. 4 specials (min_freq {}, max_size {}) of {} distinct train words",
                    self.vocab_size, self.vocab_config.min_freq, max_size, self.train_word_types
                )
            }
            TokenizerConfig::Wordpiece(path) => writeln!(
                f,
                "vocabulary: {} tokens incl. 4 specials, the WordPiece tokenizer's own ({}); \
                 the train captions use {} distinct pieces",
                self.vocab_size,
                path.display(),
                self.train_word_types
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ImageRecord;
    use std::path::PathBuf;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = LengthStats::from_lengths((1..=100).rev().collect());
        assert_eq!(
            (l.min, l.p50, l.p90, l.p95, l.p99, l.max),
            (1, 50, 90, 95, 99, 100)
        );
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert_eq!(LengthStats::from_lengths(vec![]), LengthStats::default());
        let l = LengthStats::from_lengths(vec![7]);
        assert_eq!((l.min, l.p50, l.p99, l.max), (7, 7, 7, 7));
    }

    #[test]
    fn into_result_keeps_a_single_error_and_lists_several() {
        let mut p = Problems::default();
        p.warning(DataError::Config("just a warning".into()));
        assert_eq!(p.into_result(5).unwrap(), 5);
        let mut p = Problems::default();
        p.error(DataError::record("a.txt", "line 2", "bad"));
        let err = p.into_result(()).unwrap_err();
        assert_eq!(err.to_string(), "a.txt: line 2: bad");
        let mut p = Problems::default();
        for i in 0..25 {
            p.error(DataError::record("a.txt", format!("line {i}"), "bad"));
        }
        assert_eq!(p.error_count(), 25);
        let msg = p.into_result(()).unwrap_err().to_string();
        assert!(msg.starts_with("25 problems in the dataset:"), "{msg}");
        assert!(msg.contains("a.txt: line 19: bad"), "{msg}");
        assert!(!msg.contains("a.txt: line 20: bad"), "{msg}");
        assert!(
            msg.contains("… and 5 more (`caplab data check SPEC`"),
            "{msg}"
        );
    }

    #[test]
    fn stats_count_splits_lengths_histogram_vocab_and_oov() {
        let rec = |id: &str, split, caps: &[&str]| ImageRecord {
            id: id.into(),
            path: PathBuf::from(id),
            captions: caps.iter().map(|s| s.to_string()).collect(),
            split,
            coco_id: None,
        };
        let ds = CaptionDataset {
            name: "t".into(),
            root: PathBuf::new(),
            images: vec![
                rec("a", Split::Train, &["a red circle", "a red circle", "blue"]),
                rec("b", Split::Train, &["a square"]),
                rec("c", Split::Val, &["a green circle", "red"]),
                rec("d", Split::Test, &["a b c d e f"]),
            ],
        };
        let cfg = VocabConfig {
            min_freq: 2,
            max_size: None,
        };
        let s = DatasetStats::compute(&ds, &TokenizerConfig::Words, &cfg).expect("stats");
        assert_eq!((s.splits[0].images, s.splits[0].captions), (2, 4));
        assert_eq!(s.splits[0].lengths.max, 3);
        assert_eq!(s.splits[0].lengths.min, 1);
        // a (3), red (2), circle (2) reach min_freq 2; blue and square do not.
        assert_eq!(s.vocab_size, 4 + 3);
        assert_eq!(s.train_word_types, 5);
        // val: a green circle red → green is OOV: 1 of 4.
        assert_eq!((s.splits[1].tokens, s.splits[1].oov_tokens), (4, 1));
        // test: only "a" is known: 5 of 6.
        assert!((s.splits[2].oov_rate() - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            s.captions_per_image
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect::<Vec<_>>(),
            vec![(1, 2), (2, 1), (3, 1)]
        );
        let table = s.to_string();
        assert!(table.contains("dataset t"), "{table}");
        assert!(
            table.contains("25.00%") && table.contains("83.33%"),
            "{table}"
        );
        assert!(table.contains("1: 2, 2: 1, 3: 1"), "{table}");
        assert!(table.contains("vocabulary: 7 tokens"), "{table}");
    }
}
