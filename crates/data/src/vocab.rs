//! Vocabulary with special tokens, stored as JSON: built from the training captions for the word
//! tokenizer, or the WordPiece tokenizer's own vocabulary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::CaptionDataset;
use crate::error::DataError;
use crate::fsutil::{read_json_value, write_atomic};
use crate::tokenizer::{tokenize, Tokenizer, TokenizerConfig};
use crate::wordpiece::WordPiece;

/// How the vocabulary is built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VocabConfig {
    /// Minimum number of occurrences (in the train captions) for a word to be kept.
    pub min_freq: usize,
    /// Maximum total vocabulary size *including* the four special tokens; `None` = unlimited.
    pub max_size: Option<usize>,
}

impl Default for VocabConfig {
    fn default() -> Self {
        VocabConfig {
            min_freq: 1,
            max_size: None,
        }
    }
}

/// Checks that `vocab` fits `tokenizer`: `min_freq` and `max_size` build a word vocabulary; a
/// WordPiece vocabulary is the tokenizer's own, so they must stay unset.
pub fn check_vocab(tokenizer: &TokenizerConfig, vocab: &VocabConfig) -> Result<(), DataError> {
    match tokenizer {
        TokenizerConfig::Words => Ok(()),
        TokenizerConfig::Wordpiece(path) if *vocab != VocabConfig::default() => {
            Err(DataError::Invalid {
                key: "vocab".into(),
                message: format!(
                    "(min_freq, max_size) applies to tokenizer = \"words\"; a WordPiece \
                     vocabulary is {}'s own: leave it unset",
                    path.display()
                ),
            })
        }
        TokenizerConfig::Wordpiece(_) => Ok(()),
    }
}

/// On-disk JSON form of a vocabulary.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFile {
    /// Format version: 1 (word tokenizer), 2 (names its tokenizer).
    version: u32,
    /// The tokenizer, its file relative to the vocabulary's directory (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokenizer: Option<TokenizerConfig>,
    /// Tokens in id order, specials first.
    tokens: Vec<String>,
}

/// The file a WordPiece vocabulary keeps its `tokenizer.json` in, beside the vocabulary.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A token ↔ id mapping; ids 0..=3 are `<pad> <sos> <eos> <unk>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
    tokenizer: Tokenizer,
}

impl Vocab {
    /// Padding id.
    pub const PAD: u32 = 0;
    /// Start-of-sequence id.
    pub const SOS: u32 = 1;
    /// End-of-sequence id.
    pub const EOS: u32 = 2;
    /// Unknown-word id.
    pub const UNK: u32 = 3;
    /// The special tokens, in id order.
    pub const SPECIALS: [&'static str; 4] = ["<pad>", "<sos>", "<eos>", "<unk>"];

    /// Builds a vocabulary from captions (pass the TRAIN captions only).
    ///
    /// Words are [`tokenize`]d, counted, filtered by `min_freq`, ordered by frequency
    /// (descending) then alphabetically, and truncated so that `len() <= max_size`.
    pub fn build<'a>(captions: impl IntoIterator<Item = &'a str>, cfg: &VocabConfig) -> Vocab {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for caption in captions {
            for tok in tokenize(caption) {
                *counts.entry(tok).or_insert(0) += 1;
            }
        }
        Self::from_counts(counts, cfg)
    }

    /// Builds a vocabulary from word counts of the train captions, as [`Vocab::build`] does
    /// after counting (for callers that count in parallel or need the counts themselves).
    pub fn from_counts(counts: HashMap<String, usize>, cfg: &VocabConfig) -> Vocab {
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= cfg.min_freq.max(1) && !Self::SPECIALS.contains(&w.as_str()))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let cap = cfg
            .max_size
            .map(|m| m.saturating_sub(Self::SPECIALS.len()))
            .unwrap_or(usize::MAX);
        words.truncate(cap);
        let tokens = Self::SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(words.into_iter().map(|(w, _)| w))
            .collect();
        Self::from_tokens(tokens)
    }

    /// Builds a vocabulary from the train split of `dataset` only.
    pub fn from_train(dataset: &CaptionDataset, cfg: &VocabConfig) -> Vocab {
        Self::build(dataset.train_captions(), cfg)
    }

    /// The vocabulary for `tokenizer` (spec `preprocess.tokenizer`): the word tokenizer's is
    /// built from the train `captions` per `cfg`; a WordPiece tokenizer's is its own (see
    /// [`Vocab::from_wordpiece`]), and `cfg` must then be the default.
    pub fn for_tokenizer<'a>(
        tokenizer: &TokenizerConfig,
        captions: impl IntoIterator<Item = &'a str>,
        cfg: &VocabConfig,
    ) -> Result<Vocab, DataError> {
        match tokenizer {
            TokenizerConfig::Words => Ok(Self::build(captions, cfg)),
            TokenizerConfig::Wordpiece(path) => {
                check_vocab(tokenizer, cfg)?;
                Ok(Self::from_wordpiece(WordPiece::load(path)?))
            }
        }
    }

    /// A WordPiece tokenizer's vocabulary: caplab's four special tokens, then every token of the
    /// tokenizer in its id order, except its unknown and padding tokens, which become `<unk>`
    /// and `<pad>`. So BERT's 30 522 tokens give 30 524 ids: its vocabulary plus `<sos>` and
    /// `<eos>`, as a notebook that adds those two tokens to BERT's tokenizer has.
    pub fn from_wordpiece(wp: WordPiece) -> Vocab {
        let skip = [Some(wp.unk_token()), wp.pad_token()];
        let tokens = Self::SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(wp.vocabulary().into_iter().filter(|t| {
                !skip.contains(&Some(t.as_str())) && !Self::SPECIALS.contains(&t.as_str())
            }))
            .collect();
        let mut vocab = Self::from_tokens(tokens);
        vocab.tokenizer = Tokenizer::WordPiece(std::sync::Arc::new(wp));
        vocab
    }

    fn from_tokens(tokens: Vec<String>) -> Vocab {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Vocab {
            tokens,
            index,
            tokenizer: Tokenizer::Words,
        }
    }

    /// The tokenizer whose tokens this vocabulary holds.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Number of tokens including the specials.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when only the special tokens are present.
    pub fn is_empty(&self) -> bool {
        self.tokens.len() <= Self::SPECIALS.len()
    }

    /// The id of `token`, if present.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// All tokens in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Tokenizes `caption` and maps each token to its id (`UNK` if absent); no SOS/EOS added.
    pub fn encode(&self, caption: &str) -> Vec<u32> {
        self.tokenizer
            .tokens(caption)
            .iter()
            .map(|t| self.id(t).unwrap_or(Self::UNK))
            .collect()
    }

    /// The caption text of `ids`, skipping PAD/SOS and stopping at the first EOS: words joined
    /// with spaces, or WordPiece pieces through the tokenizer's decoder (which leaves `<unk>` out).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut words: Vec<&str> = Vec::new();
        for &id in ids {
            match id {
                Self::EOS => break,
                Self::PAD | Self::SOS => continue,
                Self::UNK => words.push(match &self.tokenizer {
                    Tokenizer::Words => self.token(id),
                    Tokenizer::WordPiece(wp) => wp.unk_token(),
                }),
                _ => words.push(self.token(id)),
            }
        }
        self.tokenizer.join(&words)
    }

    /// The token for `id`; out-of-range ids give `<unk>`.
    pub fn token(&self, id: u32) -> &str {
        self.tokens
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or(Self::SPECIALS[Self::UNK as usize])
    }

    /// Saves the vocabulary as JSON (atomic write). A WordPiece vocabulary also writes its
    /// `tokenizer.json` ([`TOKENIZER_FILE`]) beside it, first, so the directory is self-contained.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let (version, tokenizer) = match &self.tokenizer {
            Tokenizer::Words => (1, None),
            Tokenizer::WordPiece(wp) => {
                let beside = path.with_file_name(TOKENIZER_FILE);
                write_atomic(&beside, wp.json().as_bytes())?;
                (
                    2,
                    Some(TokenizerConfig::Wordpiece(PathBuf::from(TOKENIZER_FILE))),
                )
            }
        };
        let file = VocabFile {
            version,
            tokenizer,
            tokens: self.tokens.clone(),
        };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| DataError::parse(path, format!("cannot serialise vocabulary: {e}")))?;
        write_atomic(path, &json)
    }

    /// Loads a vocabulary saved by [`Vocab::save`], validating the special tokens and uniqueness.
    pub fn load(path: &Path) -> Result<Vocab, DataError> {
        let value = read_json_value(path)?;
        let file: VocabFile = serde_json::from_value(value)
            .map_err(|e| DataError::parse(path, format!("not a vocabulary file: {e}")))?;
        if !matches!(file.version, 1 | 2) {
            return Err(DataError::parse(
                path,
                format!("unsupported vocabulary version {}", file.version),
            ));
        }
        for (i, special) in Self::SPECIALS.iter().enumerate() {
            if file.tokens.get(i).map(String::as_str) != Some(*special) {
                return Err(DataError::record(
                    path,
                    format!("token {i}"),
                    format!("expected special token {special}"),
                ));
            }
        }
        match file.tokenizer {
            None | Some(TokenizerConfig::Words) => {
                let vocab = Self::from_tokens(file.tokens);
                if vocab.index.len() != vocab.tokens.len() {
                    return Err(DataError::parse(path, "duplicate tokens in vocabulary"));
                }
                Ok(vocab)
            }
            Some(TokenizerConfig::Wordpiece(file_name)) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let vocab = Self::from_wordpiece(WordPiece::load(&dir.join(file_name))?);
                if vocab.tokens != file.tokens {
                    return Err(DataError::parse(
                        path,
                        "the tokens differ from its tokenizer.json's vocabulary",
                    ));
                }
                Ok(vocab)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ImageRecord, Split};
    use std::path::PathBuf;

    const CAPS: [&str; 3] = ["a red circle", "a blue circle", "A red square!"];

    #[test]
    fn specials_and_order() {
        let v = Vocab::build(CAPS, &VocabConfig::default());
        assert_eq!(&v.tokens()[..4], &["<pad>", "<sos>", "<eos>", "<unk>"]);
        // a:3, circle:2, red:2, blue:1, square:1 -> freq desc then alphabetical
        assert_eq!(&v.tokens()[4..], &["a", "circle", "red", "blue", "square"]);
        assert_eq!(v.len(), 9);
        assert_eq!(v.id("<eos>"), Some(Vocab::EOS));
    }

    #[test]
    fn min_freq_and_max_size() {
        let v = Vocab::build(
            CAPS,
            &VocabConfig {
                min_freq: 2,
                max_size: None,
            },
        );
        assert_eq!(&v.tokens()[4..], &["a", "circle", "red"]);
        let v = Vocab::build(
            CAPS,
            &VocabConfig {
                min_freq: 1,
                max_size: Some(6),
            },
        );
        assert_eq!(v.len(), 6);
        assert_eq!(&v.tokens()[4..], &["a", "circle"]);
    }

    #[test]
    fn encode_decode_unknown() {
        let v = Vocab::build(CAPS, &VocabConfig::default());
        let ids = v.encode("A red giraffe.");
        assert_eq!(
            ids,
            vec![v.id("a").unwrap(), v.id("red").unwrap(), Vocab::UNK]
        );
        let mut seq = vec![Vocab::SOS];
        seq.extend(&ids);
        seq.extend([Vocab::EOS, v.id("blue").unwrap(), Vocab::PAD]);
        assert_eq!(v.decode(&seq), "a red <unk>");
        assert_eq!(
            v.decode(&[Vocab::PAD, v.id("blue").unwrap(), Vocab::PAD]),
            "blue"
        );
        assert_eq!(v.token(10_000), "<unk>");
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/vocab.json");
        let v = Vocab::build(CAPS, &VocabConfig::default());
        v.save(&path).unwrap();
        let w = Vocab::load(&path).unwrap();
        assert_eq!(v, w);
        std::fs::write(&path, r#"{"version":1,"tokens":["a","b"]}"#).unwrap();
        let err = Vocab::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("vocab.json") && err.contains("special"),
            "{err}"
        );
    }

    #[test]
    fn built_from_train_split_only() {
        let rec = |id: &str, split, cap: &str| ImageRecord {
            id: id.into(),
            path: PathBuf::from(id),
            captions: vec![cap.into()],
            split,
            coco_id: None,
        };
        let ds = CaptionDataset {
            name: "t".into(),
            root: PathBuf::new(),
            images: vec![
                rec("a", Split::Train, "red circle"),
                rec("b", Split::Val, "valword"),
                rec("c", Split::Test, "testword"),
            ],
        };
        let v = Vocab::from_train(&ds, &VocabConfig::default());
        assert_eq!(v.id("valword"), None);
        assert_eq!(v.id("testword"), None);
        assert!(v.id("circle").is_some());
    }

    #[test]
    fn config_deserialises_with_defaults() {
        let c: VocabConfig = serde_json::from_str(r#"{"max_size": 10}"#).unwrap();
        assert_eq!(
            c,
            VocabConfig {
                min_freq: 1,
                max_size: Some(10)
            }
        );
        assert!(serde_json::from_str::<VocabConfig>(r#"{"bogus": 1}"#).is_err());
    }
}
