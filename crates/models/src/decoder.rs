//! `CaptionDecoder`: word embedding, a recurrent cell and a vocabulary head, conditioned on the image.
//!
//! The image feature enters the RNN in one of three ways (`condition` in the spec):
//! - `first_step` (Show and Tell, seeds 000/002): the projected feature is the input of step 0,
//!   whose output is discarded; words follow from step 1.
//! - `init_state` (seed 001): the feature initialises every layer's hidden (and cell) state.
//! - `every_step`: the projected feature is concatenated to every word embedding.
//!
//! The seeds' heads are spec keys of `[model.decoder]` (all off by default, adding no parameter):
//! the image projection's activation and dropout (`project_activation`, `project_dropout`: seed
//! 000/002's `Linear → ReLU → Dropout` replacing the CNN's `fc`, seed 001's `tanh(Linear)` initial
//! states), word-embedding dropout (`embed_dropout`), a `padding_idx`-style embedding whose
//! `<pad>` row stays zero (`embed_pad_zero`) and hidden layers before the vocabulary head
//! (`head_hidden`, seed 002's `Linear(256→1024) → Linear(1024→V)`). These keys belong to the RNN
//! decoder only; `[model.attention]` keeps Show-Attend-Tell's fixed layout.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::tanh;
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

/// The id of `<pad>` in every caplab vocabulary (`caplab_data::Vocab::PAD`; BERT's `[PAD]` is 0
/// too). caplab-models does not depend on caplab-data: the two agree by convention, and the
/// workspace test `tests/seeds.rs` asserts it.
pub const PAD_ID: usize = 0;

/// Activation applied to the projected image feature (`model.decoder.project_activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectActivation {
    /// Identity: the projection is a plain `Linear`.
    None,
    /// `relu(Linear(x))` (seeds 000/002: the CNN's `fc` followed by `nn.ReLU`).
    Relu,
    /// `tanh(Linear(x))` (seed 001's initial states; the `init_state` default).
    Tanh,
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
    /// Activation after the image projection `Linear(F → E)` (or `Linear(F → state)` for
    /// `init_state`): `none`, `relu` or `tanh`. Unset: `tanh` for `init_state` (as caplab always
    /// did), `none` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_activation: Option<ProjectActivation>,
    /// Dropout on the projected (and activated) image feature [N, E] (or initial state).
    #[serde(skip_serializing_if = "is_zero")]
    pub project_dropout: f64,
    /// Dropout on the word embeddings [N, T, E] (seeds 000/002: `Dropout(0.5)` after `nn.Embedding`).
    #[serde(skip_serializing_if = "is_zero")]
    pub embed_dropout: f64,
    /// `nn.Embedding(padding_idx=0)`: the `<pad>` ([`PAD_ID`]) row starts at zero, its embedding
    /// output is zero and it receives no gradient (seed 001).
    #[serde(skip_serializing_if = "is_false")]
    pub embed_pad_zero: bool,
    /// Widths of `Linear` layers between the RNN output and the vocabulary head, without
    /// activation between them (seed 002: `[1024]`, i.e. `Linear(H → 1024) → Linear(1024 → V)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub head_hidden: Vec<usize>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_false(x: &bool) -> bool {
    !*x
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
            project_activation: None,
            project_dropout: 0.0,
            embed_dropout: 0.0,
            embed_pad_zero: false,
            head_hidden: Vec::new(),
        }
    }
}

impl DecoderSpec {
    /// Checks the `[model.decoder]` values: sizes, `num_layers` and every `head_hidden` width
    /// ≥ 1, each dropout in `[0, 1)`.
    pub fn validate(&self) -> Result<(), SpecError> {
        at_least_one("model.decoder.embed_dim", self.embed_dim)?;
        at_least_one("model.decoder.hidden_dim", self.hidden_dim)?;
        at_least_one("model.decoder.num_layers", self.num_layers)?;
        dropout("model.decoder.dropout", self.dropout)?;
        dropout("model.decoder.project_dropout", self.project_dropout)?;
        dropout("model.decoder.embed_dropout", self.embed_dropout)?;
        for (i, &width) in self.head_hidden.iter().enumerate() {
            at_least_one(&format!("model.decoder.head_hidden[{i}]"), width)?;
        }
        Ok(())
    }

    /// The projection's activation: `project_activation`, or the condition's default when unset.
    pub fn resolved_activation(&self) -> ProjectActivation {
        self.project_activation.unwrap_or(match self.condition {
            Condition::InitState => ProjectActivation::Tanh,
            _ => ProjectActivation::None,
        })
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
        // `init_state`: one Linear(F → L·2H) whose output splits into every layer's h and c.
        // Seed 001 writes two, `init_h` and `init_c`, each Linear(F → H): the same function and
        // the same parameter count, F·2H + 2H = 2·(F·H + H).
        let project = match self.condition {
            Condition::InitState => LinearConfig::new(feature_dim, state_dim).init(device),
            _ => LinearConfig::new(feature_dim, self.embed_dim).init(device),
        };
        let mut embed = EmbeddingConfig::new(vocab_size, self.embed_dim).init(device);
        let pad_id = (self.embed_pad_zero && PAD_ID < vocab_size).then_some(PAD_ID);
        if let Some(pad) = pad_id {
            // As `nn.Embedding(padding_idx)`: the pad row starts at zero.
            let e = self.embed_dim;
            embed.weight = embed
                .weight
                .map(|w| w.slice_assign([pad..pad + 1, 0..e], Tensor::zeros([1, e], device)));
        }
        let mut head_hidden = Vec::with_capacity(self.head_hidden.len());
        let mut d_in = self.hidden_dim;
        for &width in &self.head_hidden {
            head_hidden.push(LinearConfig::new(d_in, width).init(device));
            d_in = width;
        }
        CaptionDecoder {
            project,
            embed,
            rnn: RnnConfig::new(self.cell, d_input, self.hidden_dim)
                .with_num_layers(self.num_layers)
                .with_dropout(self.dropout)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            // `None` when empty, so checkpoints written before the key existed still load.
            head_hidden: (!head_hidden.is_empty()).then_some(head_hidden),
            head: LinearConfig::new(d_in, vocab_size).init(device),
            condition: self.condition,
            activation: self.resolved_activation(),
            project_dropout: DropoutConfig::new(self.project_dropout).init(),
            embed_dropout: DropoutConfig::new(self.embed_dropout).init(),
            pad_id,
        }
    }
}

/// Embedding + RNN + vocabulary head, conditioned on a pooled image feature.
///
/// Shapes: features [N, F] → `project` (+ activation, dropout) → [N, E] (or [N, L·2H] / [N, L·H]
/// for `init_state` with LSTM / GRU); tokens [N, T] → `embed` (+ pad mask, dropout) → [N, T, E];
/// RNN → [N, T, H] → dropout → `head_hidden` ([N, T, H₁] … [N, T, Hₖ]) → `head` → [N, T, V].
#[derive(Module, Debug)]
pub struct CaptionDecoder<B: Backend> {
    project: Linear<B>,
    embed: Embedding<B>,
    rnn: Rnn<B>,
    dropout: Dropout,
    /// Hidden layers of the vocabulary head (`head_hidden`); `None` without any.
    head_hidden: Option<Vec<Linear<B>>>,
    head: Linear<B>,
    #[module(skip)]
    condition: Condition,
    // The parameter-free parts the seeds added are skipped from the record, so that checkpoints
    // written before they existed load unchanged.
    #[module(skip)]
    activation: ProjectActivation,
    #[module(skip)]
    project_dropout: Dropout,
    #[module(skip)]
    embed_dropout: Dropout,
    #[module(skip)]
    pad_id: Option<usize>,
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
        let words = self.embed_words(inputs);
        let image = self.project_image(features);
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
        self.vocab_head(self.dropout.forward(hidden))
    }

    /// Image projection: features [N, F] → activation(Linear) with dropout → [N, P], P = E (or
    /// the stacked initial state for `init_state`).
    fn project_image(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = self.project.forward(features);
        let x = match self.activation {
            ProjectActivation::None => x,
            ProjectActivation::Relu => relu(x),
            ProjectActivation::Tanh => tanh(x),
        };
        self.project_dropout.forward(x)
    }

    /// Word embeddings: tokens [N, T] → [N, T, E], zero where the token is `<pad>` with
    /// `embed_pad_zero` (so that row gets no gradient), then embedding dropout.
    fn embed_words(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let words = self.embed.forward(tokens.clone());
        let words = match self.pad_id {
            Some(pad) => {
                let [n, t, e] = words.dims();
                let mask = tokens
                    .equal_elem(pad as i64)
                    .unsqueeze_dim::<3>(2)
                    .expand([n, t, e]);
                words.mask_fill(mask, 0.0)
            }
            None => words,
        };
        self.embed_dropout.forward(words)
    }

    /// Vocabulary head: [.., H] → `head_hidden` layers (no activation) → `head` → [.., V].
    fn vocab_head<const D: usize>(&self, hidden: Tensor<B, D>) -> Tensor<B, D> {
        let hidden = self
            .head_hidden
            .iter()
            .flatten()
            .fold(hidden, |x, layer| layer.forward(x));
        self.head.forward(hidden)
    }

    /// Number of `Linear` layers of the vocabulary head (`head_hidden.len() + 1`).
    pub fn head_layers(&self) -> usize {
        self.head_hidden.as_ref().map_or(0, Vec::len) + 1
    }

    /// Scheduled sampling (Bengio et al. 2015): logits [N, T, V] where the input of step t is the
    /// model's own arg-max prediction of step t-1 wherever `use_prediction` [N, T] is true, and
    /// the ground truth `inputs` elsewhere (step 0 always reads `<sos>`). Steps run one at a time
    /// without the dropout before the head of [`forward`](Self::forward) (the projection and
    /// embedding dropouts do apply); the logits are log-probabilities.
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
        let image = self.project_image(features);
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
        let words = self.embed_words(tokens.reshape([n, 1])).squeeze_dim::<2>(1);
        let input = match self.condition {
            Condition::EveryStep => Tensor::cat(vec![words, state.image.clone()], 1),
            _ => words,
        };
        let (out, rnn) = self.rnn.step(input, Some(state.rnn));
        let logp = log_softmax(self.vocab_head(out), 1);
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

    /// Splits the projected (and activated) feature [N, L·2H] into h, c [L, N, H] (GRU: [N, L·H]
    /// into h).
    fn initial_state(&self, projected: Tensor<B, 2>) -> RnnState<B> {
        let [n, _] = projected.dims();
        let layers = self.rnn.num_layers();
        let hidden = self.rnn.d_hidden();
        let parts = projected;
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

#[cfg(test)]
mod seed_keys {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
    use burn::tensor::{Distribution, TensorData};

    type B = NdArray;

    fn tokens(data: Vec<i64>, shape: [usize; 2]) -> Tensor<B, 2, Int> {
        Tensor::from_data(TensorData::new(data, shape), &Default::default())
    }

    /// Every seed key set: ReLU + dropout projection, embedding dropout and pad row, 2 head layers.
    fn seed_spec(condition: Condition) -> DecoderSpec {
        DecoderSpec {
            embed_dim: 6,
            hidden_dim: 5,
            num_layers: 2,
            condition,
            project_activation: Some(ProjectActivation::Relu),
            project_dropout: 0.5,
            embed_dropout: 0.5,
            embed_pad_zero: true,
            head_hidden: vec![7, 3],
            ..DecoderSpec::default()
        }
    }

    #[test]
    fn seed_keys_keep_forward_and_step_shapes() {
        let device = Default::default();
        for condition in [
            Condition::FirstStep,
            Condition::InitState,
            Condition::EveryStep,
        ] {
            let decoder = seed_spec(condition).init::<B>(4, 11, &device);
            let features = Tensor::<B, 2>::random([2, 4], Distribution::Default, &device);
            let logits = decoder.forward(features.clone(), tokens(vec![1, 4, 0, 1, 5, 6], [2, 3]));
            assert_eq!(logits.dims(), [2, 3, 11], "{condition:?}");
            let state = decoder.start(features);
            let (logp, _) = decoder.step(tokens(vec![1, 0], [1, 2]).reshape([2]), state);
            assert_eq!(logp.dims(), [2, 11], "{condition:?}");
            assert_eq!(decoder.vocab_size(), 11);
        }
    }

    #[test]
    fn head_hidden_adds_one_linear_per_width() {
        let device = Default::default();
        let plain = DecoderSpec::default().init::<B>(4, 11, &device);
        assert_eq!(plain.head_layers(), 1);
        let spec = DecoderSpec {
            head_hidden: vec![7, 3],
            ..DecoderSpec::default()
        };
        let deep = spec.init::<B>(4, 11, &device);
        assert_eq!(deep.head_layers(), 3);
        // Linear(256→11) becomes Linear(256→7) → Linear(7→3) → Linear(3→11).
        let h = spec.hidden_dim;
        let added = (h * 7 + 7) + (7 * 3 + 3) + (3 * 11 + 11);
        assert_eq!(
            deep.num_params() + (h * 11 + 11),
            plain.num_params() + added
        );
    }

    #[test]
    fn defaults_add_no_parameter_and_serialise_as_before() {
        let device = Default::default();
        let spec = DecoderSpec::default();
        let (f, v, e, h) = (4, 11, spec.embed_dim, spec.hidden_dim);
        let lstm = 4 * h * (e + h) + 8 * h;
        let expected = (f * e + e) + v * e + lstm + (h * v + v);
        assert_eq!(spec.init::<B>(f, v, &device).num_params(), expected);
        let json = serde_json::to_value(&spec).expect("serialise");
        let keys: Vec<&String> = json.as_object().expect("a table").keys().collect();
        assert_eq!(
            keys,
            [
                "cell",
                "condition",
                "dropout",
                "embed_dim",
                "hidden_dim",
                "num_layers"
            ]
        );
        let back: DecoderSpec = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, spec);
    }

    #[test]
    fn init_state_projection_counts_as_two_linears_and_defaults_to_tanh() {
        let device = Default::default();
        let spec = DecoderSpec {
            condition: Condition::InitState,
            ..DecoderSpec::default()
        };
        assert_eq!(spec.resolved_activation(), ProjectActivation::Tanh);
        let first = DecoderSpec::default();
        assert_eq!(first.resolved_activation(), ProjectActivation::None);
        // Seed 001: init_h and init_c, each Linear(F → H), against caplab's Linear(F → 2H).
        let (f, e, h) = (9, first.embed_dim, spec.hidden_dim);
        let diff = spec.init::<B>(f, 11, &device).num_params()
            - first.init::<B>(f, 11, &device).num_params();
        assert_eq!(diff, 2 * (f * h + h) - (f * e + e));
        // An explicit tanh is the unset default: same weights, same logits.
        let features = Tensor::<B, 2>::random([2, f], Distribution::Default, &device);
        let inputs = tokens(vec![1, 4, 5, 1, 6, 0], [2, 3]);
        let implicit = spec.init::<B>(f, 11, &device);
        let expected = implicit.forward(features.clone(), inputs.clone());
        let explicit = DecoderSpec {
            project_activation: Some(ProjectActivation::Tanh),
            ..spec.clone()
        }
        .init::<B>(f, 11, &device)
        .load_record(implicit.into_record());
        let diff = (explicit.forward(features, inputs) - expected)
            .abs()
            .max()
            .into_scalar();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn pad_row_starts_at_zero_outputs_zero_and_gets_no_gradient() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let spec = DecoderSpec {
            embed_dim: 4,
            hidden_dim: 5,
            embed_pad_zero: true,
            ..DecoderSpec::default()
        };
        let decoder = spec.init::<A>(3, 8, &device);
        let row = |w: Tensor<NdArray, 2>, i: usize| -> Vec<f32> {
            w.narrow(0, i, 1).into_data().iter::<f32>().collect()
        };
        assert_eq!(
            row(decoder.embed.weight.val().inner(), PAD_ID),
            vec![0.0; 4]
        );
        // Make the pad row non-zero (e.g. GloVe set it): its output must still be zero.
        let rows: Vec<Option<Vec<f32>>> = (0..8).map(|_| Some(vec![1.0; 4])).collect();
        let (decoder, _) = decoder.with_word_vectors(&rows);
        let inputs = Tensor::<A, 2, Int>::from_data(
            TensorData::new(vec![1i64, 4, 0, 0, 1, 5, 6, 0], [2, 4]),
            &device,
        );
        let words = decoder.embed_words(inputs.clone());
        let at = |t: Tensor<A, 3>, r: usize, c: usize| -> Vec<f32> {
            t.inner()
                .narrow(0, r, 1)
                .narrow(1, c, 1)
                .into_data()
                .iter::<f32>()
                .collect()
        };
        assert_eq!(at(words.clone(), 0, 2), vec![0.0; 4]);
        assert_eq!(at(words.clone(), 1, 3), vec![0.0; 4]);
        assert_eq!(at(words, 1, 1), vec![1.0; 4]);
        let features = Tensor::<A, 2>::random([2, 3], Distribution::Default, &device);
        let grads = decoder.forward(features, inputs).sum().backward();
        let grad = decoder
            .embed
            .weight
            .grad(&grads)
            .expect("embedding gets a gradient");
        assert_eq!(row(grad.clone(), PAD_ID), vec![0.0; 4]);
        assert!(row(grad, 4).iter().any(|g| *g != 0.0), "word rows do train");
    }

    #[test]
    fn without_pad_zero_the_pad_row_trains() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let decoder = DecoderSpec::default().init::<A>(3, 8, &device);
        let inputs =
            Tensor::<A, 2, Int>::from_data(TensorData::new(vec![1i64, 4, 0, 0], [1, 4]), &device);
        let features = Tensor::<A, 2>::random([1, 3], Distribution::Default, &device);
        let grads = decoder.forward(features, inputs).sum().backward();
        let grad = decoder
            .embed
            .weight
            .grad(&grads)
            .expect("embedding gets a gradient");
        let pad: Vec<f32> = grad
            .narrow(0, PAD_ID, 1)
            .into_data()
            .iter::<f32>()
            .collect();
        assert!(pad.iter().any(|g| *g != 0.0));
    }

    #[test]
    fn validate_names_the_full_key_of_each_seed_key() {
        let bad = |spec: DecoderSpec| spec.validate().expect_err("invalid").key;
        let base = DecoderSpec::default();
        assert_eq!(
            bad(DecoderSpec {
                project_dropout: 1.0,
                ..base.clone()
            }),
            "model.decoder.project_dropout"
        );
        assert_eq!(
            bad(DecoderSpec {
                embed_dropout: -0.1,
                ..base.clone()
            }),
            "model.decoder.embed_dropout"
        );
        assert_eq!(
            bad(DecoderSpec {
                head_hidden: vec![4, 0],
                ..base.clone()
            }),
            "model.decoder.head_hidden[1]"
        );
        let err: Result<DecoderSpec, _> =
            serde_json::from_str(r#"{ "project_activation": "gelu" }"#);
        assert!(err.is_err(), "unknown activation rejected");
        let ok: DecoderSpec = serde_json::from_str(
            r#"{ "project_activation": "relu", "project_dropout": 0.5, "embed_dropout": 0.5,
                 "embed_pad_zero": true, "head_hidden": [1024] }"#,
        )
        .expect("seed keys parse");
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn checkpoint_written_before_the_seed_keys_loads_with_the_same_logits() {
        // tests/fixtures/decoder/pre_seeds.mpk: DecoderSpec { embed_dim: 4, hidden_dim: 6 } for
        // F = 5, V = 7, recorded by the code before these keys existed, with its logits.
        let device = Default::default();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decoder");
        let spec = DecoderSpec {
            embed_dim: 4,
            hidden_dim: 6,
            ..DecoderSpec::default()
        };
        let record = NamedMpkFileRecorder::<FullPrecisionSettings>::default()
            .load(dir.join("pre_seeds"), &device)
            .expect("the old checkpoint loads");
        let decoder = spec.init::<B>(5, 7, &device).load_record(record);
        let features = Tensor::<B, 2>::from_data(
            TensorData::new(
                (0..10).map(|i| (i as f32 - 4.5) / 5.0).collect::<Vec<_>>(),
                [2, 5],
            ),
            &device,
        );
        let logits: Vec<f32> = decoder
            .forward(features, tokens(vec![1, 4, 5, 0, 1, 6, 0, 0], [2, 4]))
            .into_data()
            .iter::<f32>()
            .collect();
        let text = std::fs::read_to_string(dir.join("pre_seeds.logits.json")).expect("fixture");
        let expected: Vec<f32> = serde_json::from_str(&text).expect("logits json");
        assert_eq!(logits.len(), expected.len());
        for (a, b) in logits.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
