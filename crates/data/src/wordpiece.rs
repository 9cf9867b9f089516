//! WordPiece tokenization from a Hugging Face `tokenizer.json` (BERT's `bert-base-uncased` and
//! the like), read with the `tokenizers` crate: the file format and the library the Python
//! `transformers` tokenizers are built on, so pieces, ids and decoded text are theirs.
//!
//! A user brings the file; on a machine with internet one line saves BERT's:
//! `python -c "from transformers import AutoTokenizer as T; T.from_pretrained('bert-base-uncased').backend_tokenizer.save('tokenizer.json')"`.

use std::path::Path;
use std::str::FromStr;

use tokenizers::models::ModelWrapper;

use crate::error::DataError;

/// A WordPiece tokenizer loaded from a `tokenizer.json`.
#[derive(Clone)]
pub struct WordPiece {
    inner: tokenizers::Tokenizer,
    /// The file's text as read: a run directory keeps it unchanged, so the run is self-contained.
    json: String,
    /// The model's unknown-word token (`[UNK]` for BERT).
    unk: String,
    /// The padding token (`[PAD]` for BERT), if the tokenizer has one.
    pad: Option<String>,
}

impl std::fmt::Debug for WordPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordPiece")
            .field("vocabulary", &self.inner.get_vocab_size(true))
            .field("unk", &self.unk)
            .field("pad", &self.pad)
            .finish()
    }
}

impl PartialEq for WordPiece {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for WordPiece {}

impl WordPiece {
    /// Reads and checks `path`: a `tokenizer.json` whose model is WordPiece.
    pub fn load(path: &Path) -> Result<WordPiece, DataError> {
        let json = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::from_json(path, json)
    }

    /// Parses the text of a `tokenizer.json`; `path` names it in errors.
    ///
    /// Truncation and padding settings in the file are dropped: a caption is encoded whole and
    /// unpadded (caplab cuts and pads its own batches).
    pub fn from_json(path: &Path, json: String) -> Result<WordPiece, DataError> {
        // The JSON syntax and nesting depth first (serde_json's limit of 128 levels; its
        // `IgnoredAny` has none): tokenizers 0.22 panics (`expect("Helper")`) on a syntax error
        // or a too deep value inside the `decoder` section, e.g. a truncated file (found by
        // fuzzing: fuzz/regressions/wordpiece/).
        serde_json::from_str::<serde_json::Value>(&json)
            .map_err(|e| DataError::parse(path, format!("invalid JSON: {e}")))?;
        let mut inner = tokenizers::Tokenizer::from_str(&json).map_err(|e| {
            DataError::parse(path, format!("not a Hugging Face tokenizer.json: {e}"))
        })?;
        let unk = match inner.get_model() {
            ModelWrapper::WordPiece(model) => model.unk_token.clone(),
            other => {
                let kind = match other {
                    ModelWrapper::BPE(_) => "BPE",
                    ModelWrapper::Unigram(_) => "Unigram",
                    ModelWrapper::WordLevel(_) => "WordLevel",
                    ModelWrapper::WordPiece(_) => "WordPiece",
                };
                return Err(DataError::parse(
                    path,
                    format!("the tokenizer's model is {kind}; a WordPiece tokenizer is needed"),
                ));
            }
        };
        let pad = inner
            .get_padding()
            .map(|p| p.pad_token.clone())
            .or_else(|| {
                ["[PAD]", "<pad>"]
                    .into_iter()
                    .find(|t| inner.token_to_id(t).is_some())
                    .map(str::to_string)
            });
        inner
            .with_truncation(None)
            .map_err(|e| DataError::parse(path, format!("cannot drop truncation: {e}")))?;
        inner.with_padding(None);
        inner
            .encode("a probe caption", false)
            .map_err(|e| DataError::parse(path, format!("the tokenizer cannot encode: {e}")))?;
        Ok(WordPiece {
            inner,
            json,
            unk,
            pad,
        })
    }

    /// The pieces of `caption`, without special tokens (`[CLS]`, `[SEP]`): what
    /// `tokenizer.encode(caption, add_special_tokens=False).tokens` gives in Python.
    pub fn tokens(&self, caption: &str) -> Vec<String> {
        match self.inner.encode(caption, false) {
            Ok(encoding) => encoding.get_tokens().to_vec(),
            Err(e) => {
                // Loading encoded a probe; a failure here is the library's, per caption.
                tracing::warn!("WordPiece cannot encode {caption:?}: {e}");
                Vec::new()
            }
        }
    }

    /// The tokenizer's ids of `caption`'s pieces (as [`Self::tokens`]).
    pub fn ids(&self, caption: &str) -> Vec<u32> {
        self.inner
            .encode(caption, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// Text from pieces, as Python's `tokenizer.decode(ids, skip_special_tokens=True)`: `##`
    /// continuations join their word, special tokens (`[UNK]` included) are left out.
    pub fn decode(&self, pieces: &[&str]) -> String {
        let ids: Vec<u32> = pieces
            .iter()
            .filter_map(|p| self.inner.token_to_id(p))
            .collect();
        self.inner.decode(&ids, true).unwrap_or_else(|e| {
            tracing::warn!("WordPiece cannot decode {pieces:?}: {e}");
            pieces.join(" ")
        })
    }

    /// Every token of the tokenizer (added tokens included) in the tokenizer's id order.
    pub fn vocabulary(&self) -> Vec<String> {
        let mut entries: Vec<(String, u32)> = self.inner.get_vocab(true).into_iter().collect();
        entries.sort_by_key(|(_, id)| *id);
        entries.into_iter().map(|(token, _)| token).collect()
    }

    /// The unknown-word token.
    pub fn unk_token(&self) -> &str {
        &self.unk
    }

    /// The padding token, if any.
    pub fn pad_token(&self) -> Option<&str> {
        self.pad.as_deref()
    }

    /// The `tokenizer.json` text this tokenizer was read from.
    pub fn json(&self) -> &str {
        &self.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_or_deep_nesting_in_the_decoder_is_an_error_naming_the_file_not_a_panic() {
        let json =
            r###"{"version":"1.0","decoder":{"type":"WordPiece" "prefix":"##"},"model":{}}"###;
        let err = WordPiece::from_json(Path::new("tok/tokenizer.json"), json.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tok/tokenizer.json")
                && err.contains("invalid JSON")
                && err.contains("column"),
            "{err}"
        );
        let deep = format!(
            r#"{{"decoder":{}1{},"model":{{}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let err = WordPiece::from_json(Path::new("tokenizer.json"), deep)
            .unwrap_err()
            .to_string();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
