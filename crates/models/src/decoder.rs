//! `CaptionDecoder`: word embedding, a recurrent cell and a vocabulary head, conditioned on the image.
//!
//! The image feature enters the RNN in one of three ways (`condition` in the spec):
//! - `first_step` (Show and Tell, seeds 000/002): the projected feature is the input of step 0,
//!   whose output is discarded; words follow from step 1.
//! - `init_state` (seed 001): the feature initialises every layer's hidden (and cell) state.
//! - `every_step`: the projected feature is concatenated to every word embedding.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, tanh};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::spec_error::{at_least_one, dropout, SpecError};

use crate::rnn::{CellKind, Rnn, RnnConfig, RnnState};

/// How the image feature conditions the recurrent decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Feature is the input of the first time step (Show and Tell).
    #[default]
    FirstStep,
    /// Feature initialises the hidden and cell state of every layer.
    InitState,
    /// Feature is concatenated to the word embedding at every step.
    EveryStep,
}

/// The `[model.decoder]` section of an experiment spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderSpec {
    /// Recurrent cell: `lstm` or `gru`.
    pub cell: CellKind,
    /// Word embedding size (also the size the image feature is projected to).
    pub embed_dim: usize,
    /// Hidden size of every recurrent layer.
    pub hidden_dim: usize,
    /// Number of stacked recurrent layers.
    pub num_layers: usize,
    /// Dropout between recurrent layers and before the vocabulary head.
    pub dropout: f64,
    /// How the image conditions the decoder.
    pub condition: Condition,
}

impl Default for DecoderSpec {
    fn default() -> Self {
        Self {
            cell: CellKind::Lstm,
            embed_dim: 128,
            hidden_dim: 256,
            num_layers: 1,
            dropout: 0.0,
            condition: Condition::FirstStep,
        }
    }
}

impl DecoderSpec {
    /// Checks the `[model.decoder]` values: sizes and `num_layers` ≥ 1, `dropout` in `[0, 1)`.
    pub fn validate(&self) -> Result<(), SpecError> {
        at_least_one("model.decoder.embed_dim", self.embed_dim)?;
        at_least_one("model.decoder.hidden_dim", self.hidden_dim)?;
        at_least_one("model.decoder.num_layers", self.num_layers)?;
        dropout("model.decoder.dropout", self.dropout)
    }

    /// Builds the decoder for image features of `feature_dim` and a vocabulary of `vocab_size`.
    pub fn init<B: Backend>(
        &self,
        feature_dim: usize,
        vocab_size: usize,
        device: &B::Device,
    ) -> CaptionDecoder<B> {
        let d_input = match self.condition {
            Condition::EveryStep => 2 * self.embed_dim,
            _ => self.embed_dim,
        };
        let state_dim = match self.cell {
            CellKind::Lstm => 2 * self.hidden_dim * self.num_layers,
            CellKind::Gru => self.hidden_dim * self.num_layers,
        };
        let project = match self.condition {
            Condition::InitState => LinearConfig::new(feature_dim, state_dim).init(device),
            _ => LinearConfig::new(feature_dim, self.embed_dim).init(device),
        };
        CaptionDecoder {
            project,
            embed: EmbeddingConfig::new(vocab_size, self.embed_dim).init(device),
            rnn: RnnConfig::new(self.cell, d_input, self.hidden_dim)
                .with_num_layers(self.num_layers)
                .with_dropout(self.dropout)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            head: LinearConfig::new(self.hidden_dim, vocab_size).init(device),
            condition: self.condition,
        }
    }
}

/// Embedding + RNN + vocabulary head, conditioned on a pooled image feature.
#[derive(Module, Debug)]
pub struct CaptionDecoder<B: Backend> {
    project: Linear<B>,
    embed: Embedding<B>,
    rnn: Rnn<B>,
    dropout: Dropout,
    head: Linear<B>,
    #[module(skip)]
    condition: Condition,
}

/// What the decoder carries from one step to the next during search.
#[derive(Clone, Debug)]
pub struct DecodeState<B: Backend> {
    /// Recurrent state of every layer.
    pub rnn: RnnState<B>,
    /// Projected image feature, used by `every_step` conditioning.
    pub image: Tensor<B, 2>,
}

impl<B: Backend> DecodeState<B> {
    /// Reorders (or repeats) the batch rows, as beam search needs.
    pub fn select(self, indices: Tensor<B, 1, Int>) -> Self {
        Self {
            rnn: self.rnn.select(indices.clone()),
            image: self.image.select(0, indices),
        }
    }
}

impl<B: Backend> CaptionDecoder<B> {
    /// Teacher-forced logits: `features` [N, F], `inputs` [N, T] starting with `<sos>` → [N, T, V].
    pub fn forward(&self, features: Tensor<B, 2>, inputs: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [n, t] = inputs.dims();
        let words = self.embed.forward(inputs);
        let image = self.project.forward(features);
        let hidden = match self.condition {
            Condition::FirstStep => {
                let seq = Tensor::cat(vec![image.unsqueeze_dim(1), words], 1);
                let (out, _) = self.rnn.forward(seq, None);
                out.narrow(1, 1, t)
            }
            Condition::InitState => {
                let state = self.initial_state(image);
                self.rnn.forward(words, Some(state)).0
            }
            Condition::EveryStep => {
                let [_, e] = image.dims();
                let image = image.unsqueeze_dim::<3>(1).expand([n, t, e]);
                self.rnn.forward(Tensor::cat(vec![words, image], 2), None).0
            }
        };
        self.head.forward(self.dropout.forward(hidden))
    }

    /// Scheduled sampling (Bengio et al. 2015): logits [N, T, V] where the input of step t is the
    /// model's own arg-max prediction of step t-1 wherever `use_prediction` [N, T] is true, and
    /// the ground truth `inputs` elsewhere (step 0 always reads `<sos>`). Steps run one at a time
    /// without the dropout of [`forward`](Self::forward); the logits are log-probabilities.
    pub fn forward_scheduled(
        &self,
        features: Tensor<B, 2>,
        inputs: Tensor<B, 2, Int>,
        use_prediction: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let [n, t] = inputs.dims();
        let mut state = self.start(features);
        let mut outputs = Vec::with_capacity(t);
        let mut previous: Option<Tensor<B, 1, Int>> = None;
        for i in 0..t {
            let truth = inputs.clone().narrow(1, i, 1).reshape([n]);
            let tokens = match previous {
                Some(predicted) => {
                    let mask = use_prediction.clone().narrow(1, i, 1).reshape([n]);
                    truth.mask_where(mask, predicted)
                }
                None => truth,
            };
            let (logp, next) = self.step(tokens, state);
            previous = Some(logp.clone().detach().argmax(1).reshape([n]));
            outputs.push(logp.unsqueeze_dim::<3>(1));
            state = next;
        }
        Tensor::cat(outputs, 1)
    }

    /// Starts decoding: consumes the image and returns the state before the `<sos>` step.
    pub fn start(&self, features: Tensor<B, 2>) -> DecodeState<B> {
        let image = self.project.forward(features);
        let rnn = match self.condition {
            Condition::FirstStep => self.rnn.step(image.clone(), None).1,
            Condition::InitState => self.initial_state(image.clone()),
            Condition::EveryStep => {
                let [n, _] = image.dims();
                self.rnn.zero_state(n, &image.device())
            }
        };
        DecodeState { rnn, image }
    }

    /// One decoding step: previous tokens [N] → log-probabilities [N, V] and the next state.
    pub fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: DecodeState<B>,
    ) -> (Tensor<B, 2>, DecodeState<B>) {
        let [n] = tokens.dims();
        let words = self
            .embed
            .forward(tokens.reshape([n, 1]))
            .squeeze_dim::<2>(1);
        let input = match self.condition {
            Condition::EveryStep => Tensor::cat(vec![words, state.image.clone()], 1),
            _ => words,
        };
        let (out, rnn) = self.rnn.step(input, Some(state.rnn));
        let logp = log_softmax(self.head.forward(out), 1);
        (
            logp,
            DecodeState {
                rnn,
                image: state.image,
            },
        )
    }

    /// Initialises word embeddings from vectors (GloVe rows, `None` keeps the random init).
    pub fn with_word_vectors(self, rows: &[Option<Vec<f32>>]) -> (Self, usize) {
        let (embed, found) = crate::glove::apply(self.embed, rows);
        (Self { embed, ..self }, found)
    }

    /// Word embedding size.
    pub fn embed_dim(&self) -> usize {
        self.embed.weight.dims()[1]
    }

    /// Vocabulary size of the head.
    pub fn vocab_size(&self) -> usize {
        self.head.weight.dims()[1]
    }

    fn initial_state(&self, projected: Tensor<B, 2>) -> RnnState<B> {
        let [n, _] = projected.dims();
        let layers = self.rnn.num_layers();
        let hidden = self.rnn.d_hidden();
        let parts = tanh(projected);
        let h = parts
            .clone()
            .narrow(1, 0, layers * hidden)
            .reshape([n, layers, hidden])
            .swap_dims(0, 1);
        let c = match self.rnn {
            Rnn::Lstm(_) => Some(
                parts
                    .narrow(1, layers * hidden, layers * hidden)
                    .reshape([n, layers, hidden])
                    .swap_dims(0, 1),
            ),
            Rnn::Gru(_) => None,
        };
        RnnState { h, c }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::{activation::log_softmax, TensorData};

    #[test]
    fn scheduled_sampling_with_no_sampling_equals_teacher_forcing() {
        let device = Default::default();
        let spec = DecoderSpec {
            embed_dim: 8,
            hidden_dim: 12,
            ..DecoderSpec::default()
        };
        let decoder = spec.init::<NdArray>(5, 9, &device);
        let features = Tensor::<NdArray, 2>::random(
            [2, 5],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let inputs = Tensor::<NdArray, 2, Int>::from_data(
            TensorData::new(vec![1i64, 4, 5, 6, 1, 7, 8, 4], [2, 4]),
            &device,
        );
        let teacher = log_softmax(decoder.forward(features.clone(), inputs.clone()), 2);
        let none =
            Tensor::<NdArray, 2, Bool>::from_data(TensorData::new(vec![false; 8], [2, 4]), &device);
        let scheduled = decoder.forward_scheduled(features.clone(), inputs.clone(), none);
        let diff = (teacher - scheduled.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");

        // Feeding predictions everywhere equals greedy decoding's log-probabilities.
        let all =
            Tensor::<NdArray, 2, Bool>::from_data(TensorData::new(vec![true; 8], [2, 4]), &device);
        let free = decoder.forward_scheduled(features.clone(), inputs, all);
        let greedy: Vec<i64> = free.clone().argmax(2).into_data().iter::<i64>().collect();
        let mut state = decoder.start(features);
        let mut tokens =
            Tensor::<NdArray, 1, Int>::from_data(TensorData::new(vec![1i64, 1], [2]), &device);
        for t in 0..4 {
            let (logp, next) = decoder.step(tokens, state);
            state = next;
            let best = logp.argmax(1).reshape([2]);
            let ids: Vec<i64> = best.clone().into_data().iter::<i64>().collect();
            assert_eq!(ids, vec![greedy[t], greedy[4 + t]]);
            tokens = best;
        }
    }
}
