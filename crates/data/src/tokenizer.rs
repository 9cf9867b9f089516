//! Caption tokenizers: caplab's word tokenizer ([`tokenize`]) and WordPiece from a Hugging Face
//! `tokenizer.json` ([`crate::wordpiece::WordPiece`]), chosen by [`TokenizerConfig`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::wordpiece::WordPiece;

/// Which tokenizer turns captions into tokens (spec key `preprocess.tokenizer`):
/// `"words"` or `{ wordpiece = "path/to/tokenizer.json" }`. Which vocabulary settings go with
/// it is the vocabulary's rule: [`crate::vocab::check_vocab`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerConfig {
    /// [`tokenize`]: lower-cased words; the vocabulary is built from the training captions.
    #[default]
    Words,
    /// WordPiece from a Hugging Face `tokenizer.json`; the vocabulary is the tokenizer's own.
    Wordpiece(PathBuf),
}

/// A loaded tokenizer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tokenizer {
    /// [`tokenize`].
    #[default]
    Words,
    /// A WordPiece tokenizer (shared: the vocabulary and its clones hold one copy).
    WordPiece(Arc<WordPiece>),
}

impl Tokenizer {
    /// Loads the tokenizer `config` names; a WordPiece file that cannot be read or is not a
    /// WordPiece `tokenizer.json` is an error naming it.
    pub fn load(config: &TokenizerConfig) -> Result<Tokenizer, DataError> {
        Ok(match config {
            TokenizerConfig::Words => Tokenizer::Words,
            TokenizerConfig::Wordpiece(path) => {
                Tokenizer::WordPiece(Arc::new(WordPiece::load(path)?))
            }
        })
    }

    /// Loads a WordPiece tokenizer from `path`.
    pub fn wordpiece(path: &Path) -> Result<Tokenizer, DataError> {
        Ok(Tokenizer::WordPiece(Arc::new(WordPiece::load(path)?)))
    }

    /// The tokens of `caption`.
    pub fn tokens(&self, caption: &str) -> Vec<String> {
        match self {
            Tokenizer::Words => tokenize(caption),
            Tokenizer::WordPiece(wp) => wp.tokens(caption),
        }
    }

    /// Caption text from tokens: words joined by spaces, or WordPiece's decoder.
    pub fn join(&self, tokens: &[&str]) -> String {
        match self {
            Tokenizer::Words => tokens.join(" "),
            Tokenizer::WordPiece(wp) => wp.decode(tokens),
        }
    }
}

/// Splits a caption into lower-case word tokens.
///
/// Rules, applied in order:
/// 1. the caption is lower-cased (Unicode-aware);
/// 2. a letter or digit is kept;
/// 3. an apostrophe (`'` or `’`, normalised to `'`) or a hyphen (`-`) is kept only when it is
///    *intra-word*, i.e. directly preceded and followed by a letter or digit
///    (`dog's`, `t-shirt`, `mid-sized`); leading/trailing ones are dropped (`'quoted'` → `quoted`);
/// 4. every other character (punctuation, symbols, whitespace) becomes a separator;
/// 5. the text is split on separators and empty pieces are dropped.
///
/// So `"A dog's red T-shirt, (wet)!"` → `["a", "dog's", "red", "t-shirt", "wet"]`.
pub fn tokenize(caption: &str) -> Vec<String> {
    let chars: Vec<char> = caption.to_lowercase().chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            current.push(c);
            continue;
        }
        let joiner = matches!(c, '\'' | '\u{2019}' | '-');
        let prev_word = i > 0 && chars[i - 1].is_alphanumeric();
        let next_word = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if joiner && prev_word && next_word {
            current.push(if c == '-' { '-' } else { '\'' });
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    #[test]
    fn lowercases_and_strips_punctuation() {
        assert_eq!(
            tokenize("A dog's red T-shirt, (wet)!"),
            vec!["a", "dog's", "red", "t-shirt", "wet"]
        );
    }

    #[test]
    fn edge_apostrophes_and_hyphens_are_dropped() {
        assert_eq!(
            tokenize("'quoted' - -dash- it’s"),
            vec!["quoted", "dash", "it's"]
        );
    }

    #[test]
    fn whitespace_variants_and_empty() {
        assert_eq!(tokenize("  two\tdogs\r\nrun  "), vec!["two", "dogs", "run"]);
        assert!(tokenize("").is_empty());
        assert!(tokenize(" ,.;!? ").is_empty());
    }

    #[test]
    fn digits_and_unicode() {
        assert_eq!(tokenize("3 Cafés, 2nd."), vec!["3", "cafés", "2nd"]);
    }
}
