//! Burn-train metrics of a captioning run: token loss, and corpus BLEU-4 / CIDEr of greedy captions.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use caplab_data::vocab::Vocab;
use caplab_metrics::{evaluate, EvalOptions};

/// Summed cross-entropy of a batch and the number of non-pad tokens it covers.
#[derive(Clone, Copy, Debug)]
pub struct LossInput {
    /// Mean loss per token in the batch.
    pub mean: f64,
    /// Number of non-pad target tokens.
    pub tokens: usize,
}

/// Cross-entropy per target token, averaged over an epoch weighted by tokens.
#[derive(Clone)]
pub struct TokenLossMetric {
    name: MetricName,
    state: NumericMetricState,
}

impl TokenLossMetric {
    /// The metric named `Loss`.
    pub fn new() -> Self {
        Self {
            name: Arc::new("Loss".to_string()),
            state: NumericMetricState::new(),
        }
    }
}

impl Metric for TokenLossMetric {
    type Input = LossInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }

    fn update(&mut self, item: &LossInput, _metadata: &MetricMetadata) -> SerializedEntry {
        self.state.update(
            item.mean,
            item.tokens.max(1),
            FormatOptions::new(self.name.clone()).precision(3),
        )
    }

    fn clear(&mut self) {
        self.state.reset();
    }
}

impl Numeric for TokenLossMetric {
    fn value(&self) -> NumericEntry {
        self.state.current_value()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.running_value()
    }
}

/// Greedy captions of a validation batch, as token ids, with their image indices.
#[derive(Clone, Debug, Default)]
pub struct CaptionsInput {
    /// Index of each image within the validation split.
    pub indices: Vec<usize>,
    /// Decoded token ids for each image.
    pub tokens: Vec<Vec<u32>>,
}

/// Which corpus score a [`CorpusScoreMetric`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusScore {
    /// BLEU-4 as pycocoevalcap computes it.
    Bleu4,
    /// CIDEr-D as pycocoevalcap computes it.
    Cider,
}

impl CorpusScore {
    /// The metric's key in `caplab_metrics::Evaluation`.
    pub fn key(self) -> &'static str {
        match self {
            CorpusScore::Bleu4 => "BLEU-4",
            CorpusScore::Cider => "CIDEr",
        }
    }
}

/// A corpus-level caption score over one epoch's validation captions.
///
/// Burn averages per-batch entries weighted by their counts; each batch therefore reports the
/// increment that makes the running weighted mean equal the corpus score of every caption so far,
/// so the epoch value is exactly the corpus score of the whole validation split.
#[derive(Clone)]
pub struct CorpusScoreMetric {
    name: MetricName,
    score: CorpusScore,
    vocab: Arc<Vocab>,
    references: Arc<Vec<Vec<String>>>,
    hypotheses: BTreeMap<usize, String>,
    previous_total: f64,
    current: NumericEntry,
    running: f64,
}

impl CorpusScoreMetric {
    /// A metric scoring captions against `references` (one list per validation image).
    pub fn new(score: CorpusScore, vocab: Arc<Vocab>, references: Arc<Vec<Vec<String>>>) -> Self {
        Self {
            name: Arc::new(score.key().to_string()),
            score,
            vocab,
            references,
            hypotheses: BTreeMap::new(),
            previous_total: 0.0,
            current: NumericEntry::Value(0.0),
            running: 0.0,
        }
    }

    fn corpus_score(&self) -> f64 {
        let mut refs = BTreeMap::new();
        let mut cands = BTreeMap::new();
        for (i, hyp) in &self.hypotheses {
            let key = format!("{i:08}");
            refs.insert(key.clone(), self.references[*i].clone());
            cands.insert(key, hyp.clone());
        }
        match evaluate(&refs, &cands, &EvalOptions::default()) {
            Ok(e) => e.corpus.get(self.score.key()).copied().unwrap_or(0.0),
            Err(err) => {
                tracing::warn!("validation {} failed: {err}", self.score.key());
                0.0
            }
        }
    }
}

impl Metric for CorpusScoreMetric {
    type Input = CaptionsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: true,
        }
        .into()
    }

    fn update(&mut self, item: &CaptionsInput, _metadata: &MetricMetadata) -> SerializedEntry {
        for (i, toks) in item.indices.iter().zip(&item.tokens) {
            if *i < self.references.len() {
                self.hypotheses.insert(*i, self.vocab.decode(toks));
            }
        }
        let n = self.hypotheses.len();
        let batch = item.indices.len().max(1);
        let score = self.corpus_score();
        let total = score * n as f64;
        self.current = NumericEntry::Aggregated {
            aggregated_value: (total - self.previous_total) / batch as f64,
            count: batch,
        };
        self.previous_total = total;
        self.running = score;
        SerializedEntry::new(
            format!("{} {score:.4} over {n} images", self.score.key()),
            self.current.serialize(),
        )
    }

    fn clear(&mut self) {
        self.hypotheses.clear();
        self.previous_total = 0.0;
        self.current = NumericEntry::Value(0.0);
        self.running = 0.0;
    }
}

impl Numeric for CorpusScoreMetric {
    fn value(&self) -> NumericEntry {
        self.current.clone()
    }

    fn running_value(&self) -> NumericEntry {
        NumericEntry::Value(self.running)
    }
}

/// What a training step hands to the metrics.
#[derive(Clone, Copy, Debug)]
pub struct TrainItem {
    /// Loss of the step.
    pub loss: LossInput,
}

impl Adaptor<LossInput> for TrainItem {
    fn adapt(&self) -> LossInput {
        self.loss
    }
}

/// What a validation step hands to the metrics.
#[derive(Clone, Debug)]
pub struct ValidItem {
    /// Teacher-forced loss of the batch.
    pub loss: LossInput,
    /// Greedy captions of the batch.
    pub captions: CaptionsInput,
}

impl Adaptor<LossInput> for ValidItem {
    fn adapt(&self) -> LossInput {
        self.loss
    }
}

impl Adaptor<CaptionsInput> for ValidItem {
    fn adapt(&self) -> CaptionsInput {
        self.captions.clone()
    }
}

impl burn::train::ItemLazy for TrainItem {
    type ItemSync = TrainItem;
    fn sync(self) -> TrainItem {
        self
    }
}

impl burn::train::ItemLazy for ValidItem {
    type ItemSync = ValidItem;
    fn sync(self) -> ValidItem {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::Progress;

    fn meta() -> MetricMetadata {
        MetricMetadata {
            progress: Progress {
                items_processed: 1,
                items_total: 1,
            },
            global_progress: Progress {
                items_processed: 1,
                items_total: 1,
            },
            iteration: Some(1),
            lr: None,
        }
    }

    #[test]
    fn epoch_mean_of_batch_entries_is_the_corpus_score() {
        let captions = [
            "a red circle left of a blue square",
            "a green star",
            "a big yellow triangle above a small black cross",
            "a white ring on a gray background",
            "two shapes a pink diamond and an orange star",
        ];
        let vocab = Arc::new(Vocab::build(captions.iter().copied(), &Default::default()));
        let refs: Vec<Vec<String>> = captions
            .iter()
            .map(|c| vec![c.to_string(), format!("there is {c}")])
            .collect();
        let hyps = [
            "a red circle",
            "a green star",
            "a yellow triangle",
            "a white ring",
            "a pink star",
        ];
        let tokens: Vec<Vec<u32>> = hyps.iter().map(|h| vocab.encode(h)).collect();
        for score in [CorpusScore::Cider, CorpusScore::Bleu4] {
            let mut metric = CorpusScoreMetric::new(score, vocab.clone(), Arc::new(refs.clone()));
            let mut sum = 0.0;
            let mut count = 0;
            for batch in [vec![0, 1], vec![2, 3, 4]] {
                let input = CaptionsInput {
                    tokens: batch.iter().map(|i| tokens[*i].clone()).collect(),
                    indices: batch,
                };
                let entry = metric.update(&input, &meta());
                let parsed = NumericEntry::deserialize(&entry.serialized).expect("numeric");
                if let NumericEntry::Aggregated {
                    aggregated_value,
                    count: c,
                } = parsed
                {
                    sum += aggregated_value * c as f64;
                    count += c;
                }
            }
            let all: BTreeMap<String, Vec<String>> = (0..5)
                .map(|i| (format!("{i:08}"), refs[i].clone()))
                .collect();
            let cands: BTreeMap<String, String> = (0..5)
                .map(|i| (format!("{i:08}"), vocab.decode(&tokens[i])))
                .collect();
            let corpus = evaluate(&all, &cands, &EvalOptions::default()).expect("scores");
            let expected = corpus.corpus[score.key()];
            assert!(expected > 0.0);
            assert!(
                (sum / count as f64 - expected).abs() < 1e-9,
                "{}: {} vs {expected}",
                score.key(),
                sum / count as f64
            );
        }
    }
}
