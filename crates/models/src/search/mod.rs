//! Caption search over a decoder: greedy (beam and sampling come with the decoding issue).

pub mod greedy;

pub use greedy::GreedySearch;

/// Decoded captions: token ids without `<sos>`, cut after `<eos>`, and their total log-probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// Token ids, `<eos>` excluded.
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the emitted tokens (`<eos>` included when emitted).
    pub log_prob: f64,
}
