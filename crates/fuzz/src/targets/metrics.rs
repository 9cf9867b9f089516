//! caplab-metrics' parsers: the results JSON `caplab score` reads, the PTB tokenizer and
//! METEOR's normalisation (with caplab's word tokenizer, also run on arbitrary Unicode).

use std::sync::OnceLock;

use caplab_metrics::meteor::Meteor;

use super::outcome::outcome;
use crate::scratch;

/// A COCO results file (`[{"image_id", "caption"}]`): [`caplab_metrics::coco::load_results`].
pub fn results_json(data: &[u8]) -> String {
    let path = scratch::file("results_json", "captions.json", data);
    outcome(&caplab_metrics::coco::load_results(&path))
}

/// Arbitrary text (invalid UTF-8 replaced) through the PTB tokenizer, whole and line by line as
/// pycocoevalcap joins captions, and through caplab's word tokenizer.
pub fn ptb_tokenizer(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let tokens = caplab_metrics::ptb_tokenize(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    caplab_metrics::ptb_tokenize_lines(&lines);
    caplab_data::tokenize(&text);
    format!("{} tokens", tokens.len().min(8))
}

/// METEOR(exact+stem) (the jar's function words and prefixes when `CAPLAB_METEOR_DIR` has it),
/// built once per process.
fn meteor() -> &'static Meteor {
    static METEOR: OnceLock<Meteor> = OnceLock::new();
    METEOR.get_or_init(|| {
        Meteor::exact_stem()
            .or_else(|_| Meteor::exact_stem_with(None))
            .expect("METEOR(exact+stem) without resources cannot fail")
    })
}

/// Arbitrary text as METEOR segments: the first line is the candidate, the others its
/// references; each is normalised as the jar's `-norm` does, then aligned and scored.
pub fn meteor_norm(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let cand = lines.next().unwrap_or_default();
    let refs: Vec<String> = lines.map(str::to_string).collect();
    let stats = meteor().segment_stats(cand, &refs);
    format!("{} stats", stats.len())
}
