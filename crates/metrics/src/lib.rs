//! Captioning metrics with the exact numbers of the COCO caption evaluation toolkit
//! (pycocoevalcap): PTB tokenisation, BLEU-1..4, METEOR 1.5, ROUGE-L and CIDEr-D, plus paired
//! bootstrap resampling, decoding diagnostics and COCO annotation / results loaders.
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
//! file that later processes memory-map (see [`meteor::cache`]): in `$CAPLAB_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/caplab`, else `~/.cache/caplab`.

pub mod bleu;
pub mod bootstrap;
pub mod cider;
pub mod coco;
mod corpus;
pub mod diagnostics;
mod error;
mod evaluate;
mod hash;
pub mod meteor;
mod ngrams;
pub mod ptb;
pub mod rouge;
mod scoring;
mod signature;
mod stats;
mod tokenized;

pub use corpus::Corpus;
pub use error::MetricsError;
pub use evaluate::{
    evaluate, evaluate_stats, meteor_scorer, meteor_segment_stats, stats_of_ids,
    stats_of_tokenized, EvalOptions, MeteorMode,
};
pub use meteor::{METEOR_EXACT_STEM, METEOR_FULL};
pub use ptb::{ptb_tokenize, ptb_tokenize_lines};
pub use signature::{Signature, SIGNATURE_BLEU, SIGNATURE_CIDER, SIGNATURE_TOKENIZER};
pub use stats::{numpy_sum, Aggregate, EvalStats, Evaluation, MetricStats};
pub use tokenized::{tokenize_ids, tokenize_set, Tokenized, TokenizedIds};
