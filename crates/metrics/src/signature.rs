//! The [`Signature`] of a set of scores: the tokenizer, METEOR mode and resources, CIDEr and
//! BLEU variants and this crate's version (see the crate documentation).

use serde::{Deserialize, Serialize};

use crate::error::MetricsError;
use crate::evaluate::{meteor_scorer, EvalOptions};
use crate::meteor;

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

    /// The signature of [`evaluate`](crate::evaluate()) with `opts` (loads METEOR's resources,
    /// from the cache when possible, to hash them; once per process).
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
