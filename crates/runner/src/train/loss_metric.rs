//! burn-train metric adapters: the token loss burn-train shows and logs while training, and the
//! items the steps hand it. Epoch values (validation BLEU-4 and CIDEr included) are computed once
//! per epoch by [`super::epoch_end::EpochEnd`].

use std::sync::Arc;

use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};

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

impl Default for TokenLossMetric {
    fn default() -> Self {
        Self::new()
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

/// What a validation step hands to the metrics (its greedy captions go to the epoch's tally,
/// scored once when the epoch ends).
#[derive(Clone, Debug)]
pub struct ValidItem {
    /// Teacher-forced loss of the batch.
    pub loss: LossInput,
}

impl Adaptor<LossInput> for ValidItem {
    fn adapt(&self) -> LossInput {
        self.loss
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
