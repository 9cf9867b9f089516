//! `TransformerCaptionDecoder`: word embeddings and positions, a [`TransformerDecoder`] stack
//! attending over the encoder's spatial grid, and a vocabulary head — the `[model.transformer]`
//! section of a spec.
//!
//! Shapes: grid `[N, L, D]` → `relu(memory_proj)` (+ dropout) → memory `[N, L, d]`, with the
//! optional global token `relu(global_proj(mean_L grid))` in front (`[N, 1 + L, d]`); tokens
//! `[N, T]` → `embedding · √d + positions` (+ dropout) → `[N, T, d]` → decoder stack →
//! `head` → logits `[N, T, V]`. The memory layer follows ruotianluo's ImageCaptioning.pytorch
//! (`att_embed`: Linear, ReLU, Dropout), which then runs a transformer encoder; caplab's
//! decoder attends the projected grid directly.
//!
//! Decoding is incremental: [`TransformerCaptionDecoder::start`] computes every layer's
//! cross-attention keys and values once, and each [`step`](TransformerCaptionDecoder::step)
//! runs only the new position, appending its self-attention keys and values to a per-layer
//! cache that beam search reorders with the beams ([`TransformerState::select`]).

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::attention::KvCache;
use super::layer::TransformerDecoderLayerConfig;
use super::position::{encodings, table, PositionKind};
use super::stack::{TransformerDecoder, TransformerDecoderConfig};
use crate::attention::{greedy_with_maps, AttentionMap};
use crate::search::{GreedySearch, Hypothesis, StepDecoder};
use crate::spec_error::{at_least_one, dropout, SpecError};

/// Where each block's layer norm sits (`model.transformer.norm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NormPlacement {
    /// After the residual sum (Vaswani et al.; PyTorch's default `norm_first = False`).
    #[default]
    Post,
    /// Before each block, with a final norm after the stack (`norm_first = True`).
    Pre,
}

/// The `[model.transformer]` section of an experiment spec: a transformer decoder over the
/// encoder's spatial grid. The sizes default to ruotianluo's ImageCaptioning.pytorch
/// `transformer` (6 layers, d_model 512, 8 heads, FFN 2048, dropout 0.1, sinusoidal positions);
/// its layers are pre-norm with a final norm (`norm = "pre"`), while the default here is
/// PyTorch's post-norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerSpec {
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Model width (also the word embedding size).
    pub d_model: usize,
    /// Attention heads; must divide `d_model`.
    pub num_heads: usize,
    /// Hidden width of each layer's feed-forward block.
    pub d_ff: usize,
    /// Dropout of embeddings, memory, attention weights, feed-forward and residual branches.
    pub dropout: f64,
    /// `post` (after the residual sum) or `pre` (before each block, plus a final norm).
    pub norm: NormPlacement,
    /// `sinusoidal` or `learned` position encodings.
    pub positions: PositionKind,
    /// Rows of the learned position table: the longest decoder input (`<sos>` + words). Only
    /// with `positions = "learned"`.
    pub max_positions: usize,
    /// Adds a projected mean of the grid as one more memory location (a global token).
    pub global_token: bool,
    /// PyTorch state_dict (`.safetensors` or `torch.save`) of the whole decoder to start from,
    /// keys as `scripts/parity/transformer.py`'s `CaptionTransformer` names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

impl Default for TransformerSpec {
    fn default() -> Self {
        Self {
            num_layers: 6,
            d_model: 512,
            num_heads: 8,
            d_ff: 2048,
            dropout: 0.1,
            norm: NormPlacement::Post,
            positions: PositionKind::Sinusoidal,
            max_positions: 64,
            global_token: false,
            weights: None,
        }
    }
}

impl TransformerSpec {
    /// Checks the `[model.transformer]` values: sizes ≥ 1, `num_heads` dividing `d_model`,
    /// `dropout` in `[0, 1)`.
    pub fn validate(&self) -> Result<(), SpecError> {
        at_least_one("model.transformer.num_layers", self.num_layers)?;
        at_least_one("model.transformer.d_model", self.d_model)?;
        at_least_one("model.transformer.num_heads", self.num_heads)?;
        at_least_one("model.transformer.d_ff", self.d_ff)?;
        at_least_one("model.transformer.max_positions", self.max_positions)?;
        dropout("model.transformer.dropout", self.dropout)?;
        if !self.d_model.is_multiple_of(self.num_heads) {
            return Err(SpecError::new(
                "model.transformer.num_heads",
                format!(
                    "must divide model.transformer.d_model = {}, got {}",
                    self.d_model, self.num_heads
                ),
            ));
        }
        Ok(())
    }

    /// The longest decoder input this decoder can read: `max_positions` for learned positions,
    /// `None` (unbounded) for sinusoids.
    pub fn position_limit(&self) -> Option<usize> {
        (self.positions == PositionKind::Learned).then_some(self.max_positions)
    }

    /// Checks that captions of `words` words fit the position table: the decoder reads `<sos>`
    /// and the words (`words + 1` positions). The error names `key`, the setting that asks for
    /// them (e.g. `eval.search.max_len`).
    pub fn check_length(&self, key: &str, words: usize) -> Result<(), SpecError> {
        match self.position_limit() {
            Some(limit) if words + 1 > limit => Err(SpecError::new(
                key,
                format!(
                    "must be at most {} with model.transformer.max_positions = {limit} \
                     (learned positions: <sos> and {words} words need {} rows), got {words}",
                    limit - 1,
                    words + 1
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Builds the decoder for grid annotations of size `encoder_dim` and `vocab_size` words.
    ///
    /// Panics when `num_heads` does not divide `d_model` ([`validate`](Self::validate) says so
    /// first, naming the key).
    pub fn init<B: Backend>(
        &self,
        encoder_dim: usize,
        vocab_size: usize,
        device: &B::Device,
    ) -> TransformerCaptionDecoder<B> {
        let d = self.d_model;
        let layer = TransformerDecoderLayerConfig::new(d, self.num_heads, self.d_ff)
            .with_dropout(self.dropout)
            .with_norm_first(self.norm == NormPlacement::Pre);
        TransformerCaptionDecoder {
            embedding: EmbeddingConfig::new(vocab_size, d).init(device),
            positions: table(self.positions, self.max_positions, d, device),
            memory_proj: LinearConfig::new(encoder_dim, d).init(device),
            global_proj: self
                .global_token
                .then(|| LinearConfig::new(encoder_dim, d).init(device)),
            decoder: TransformerDecoderConfig::new(layer, self.num_layers).init(device),
            head: LinearConfig::new(d, vocab_size).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// Transformer caption decoder; module names as `scripts/parity/transformer.py`'s
/// `CaptionTransformer`, whose PyTorch state_dict keys map onto it by name.
#[derive(Module, Debug)]
pub struct TransformerCaptionDecoder<B: Backend> {
    /// Word embedding `V → d` (scaled by `√d` when read).
    pub embedding: Embedding<B>,
    /// Learned position table `[max_positions, d]`; `None` for sinusoids.
    pub positions: Option<Embedding<B>>,
    /// Grid annotation projection `D → d`.
    pub memory_proj: Linear<B>,
    /// Global-token projection `D → d` of the mean annotation (`global_token = true`).
    pub global_proj: Option<Linear<B>>,
    /// The `nn.TransformerDecoder`-shaped stack.
    pub decoder: TransformerDecoder<B>,
    /// Vocabulary head `d → V`.
    pub head: Linear<B>,
    /// Dropout of the embeddings and the memory.
    pub dropout: Dropout,
}

/// What the transformer carries between decoding steps.
#[derive(Clone, Debug)]
pub struct TransformerState<B: Backend> {
    /// Each layer's cross-attention keys and values of the memory `[N, heads, S, d_head]`.
    pub memory: Vec<KvCache<B>>,
    /// Each layer's self-attention keys and values of the positions decoded so far
    /// (`[N, heads, t, d_head]`; empty before the first step).
    pub past: Vec<KvCache<B>>,
    /// Number of positions decoded so far.
    pub position: usize,
    /// Last layer's cross-attention of the last step, mean over heads, grid locations only `[N, L]`.
    pub alpha: Tensor<B, 2>,
}

impl<B: Backend> TransformerState<B> {
    /// Keeps (or repeats) the batch rows `indices` of every cache, as beam search needs.
    pub fn select(self, indices: Tensor<B, 1, Int>) -> Self {
        Self {
            memory: self
                .memory
                .into_iter()
                .map(|kv| kv.select(indices.clone()))
                .collect(),
            past: self
                .past
                .into_iter()
                .map(|kv| kv.select(indices.clone()))
                .collect(),
            position: self.position,
            alpha: self.alpha.select(0, indices),
        }
    }
}

impl<B: Backend> AttentionMap<B> for TransformerState<B> {
    fn last_map(&self) -> Tensor<B, 2> {
        self.alpha.clone()
    }
}

impl<B: Backend> TransformerCaptionDecoder<B> {
    /// Model width `d`.
    pub fn d_model(&self) -> usize {
        self.embedding.weight.dims()[1]
    }

    /// Vocabulary size of the head.
    pub fn vocab_size(&self) -> usize {
        self.head.weight.dims()[1]
    }

    /// Rows of the learned position table (`None`: sinusoids, any length).
    pub fn position_limit(&self) -> Option<usize> {
        self.positions.as_ref().map(|t| t.weight.dims()[0])
    }

    /// The memory the decoder attends: grid `[N, L, D]` → `[N, S, d]`, S = L (+ 1 with the
    /// global token, in front).
    pub fn memory(&self, grid: Tensor<B, 3>) -> Tensor<B, 3> {
        let locations = relu(self.memory_proj.forward(grid.clone()));
        let memory = match &self.global_proj {
            Some(global) => {
                let mean = grid.mean_dim(1);
                Tensor::cat(vec![relu(global.forward(mean)), locations], 1)
            }
            None => locations,
        };
        self.dropout.forward(memory)
    }

    /// Embedded tokens `[N, T]` at positions `from..from + T`: `embedding · √d + positions`,
    /// then dropout → `[N, T, d]`.
    fn embed(&self, tokens: Tensor<B, 2, Int>, from: usize) -> Tensor<B, 3> {
        let [_, t] = tokens.dims();
        let d = self.d_model();
        let words = self
            .embedding
            .forward(tokens.clone())
            .mul_scalar((d as f64).sqrt());
        let positions = encodings(self.positions.as_ref(), from, t, d, &tokens.device());
        self.dropout
            .forward(words + positions.unsqueeze_dim::<3>(0))
    }

    /// The grid part of cross-attention weights `[N, heads, T, S]`, mean over heads: `[N, T, L]`.
    fn grid_weights(&self, weights: Tensor<B, 4>) -> Tensor<B, 3> {
        let [n, _, t, s] = weights.dims();
        let mean = weights.mean_dim(1).reshape([n, t, s]);
        match self.global_proj {
            Some(_) => mean.narrow(2, 1, s - 1),
            None => mean,
        }
    }

    /// Teacher-forced logits `[N, T, V]` and the last layer's cross-attention over the grid
    /// (mean over heads) `[N, T, L]` for grid annotations `[N, L, D]` and `inputs` `[N, T]`
    /// starting with `<sos>`. Causal: the logits of step `t` depend on `inputs[.., ..=t]` only.
    pub fn forward(
        &self,
        grid: Tensor<B, 3>,
        inputs: Tensor<B, 2, Int>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let memory = self.decoder.memory(self.memory(grid));
        let x = self.embed(inputs, 0);
        let (y, weights) = self.decoder.forward(x, &memory);
        (self.head.forward(y), self.grid_weights(weights))
    }

    /// Starts decoding grid annotations `[N, L, D]`: the memory's keys and values, no position yet.
    pub fn start(&self, grid: Tensor<B, 3>) -> TransformerState<B> {
        let [n, l, _] = grid.dims();
        let device = grid.device();
        TransformerState {
            memory: self.decoder.memory(self.memory(grid)),
            past: Vec::new(),
            position: 0,
            alpha: Tensor::zeros([n, l], &device),
        }
    }

    /// One incremental step: previous tokens `[N]` → log-probabilities `[N, V]` of the next
    /// token and the state with this position's keys and values cached.
    ///
    /// Panics past the learned position table (specs check lengths first, naming the key).
    pub fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: TransformerState<B>,
    ) -> (Tensor<B, 2>, TransformerState<B>) {
        let [n] = tokens.dims();
        let x = self.embed(tokens.reshape([n, 1]), state.position);
        let (y, weights, past) = self.decoder.step(x, &state.memory, state.past);
        let [_, _, d] = y.dims();
        let logp = log_softmax(self.head.forward(y.reshape([n, d])), 1);
        let alpha = self.grid_weights(weights);
        let [_, _, l] = alpha.dims();
        let state = TransformerState {
            memory: state.memory,
            past,
            position: state.position + 1,
            alpha: alpha.reshape([n, l]),
        };
        (logp, state)
    }

    /// Greedy captions of grid annotations `[N, L, D]` with, per row, one cross-attention map
    /// `[L]` per emitted word (last layer, mean over heads).
    pub fn attend_greedy(
        &self,
        search: &GreedySearch,
        grid: Tensor<B, 3>,
    ) -> (Vec<Hypothesis>, Vec<Vec<Vec<f32>>>) {
        let [n, _, _] = grid.dims();
        let device = grid.device();
        greedy_with_maps(self, search, self.start(grid), n, &device)
    }

    /// Initialises word embeddings from vectors (GloVe rows, `None` keeps the random init).
    pub fn with_word_vectors(self, rows: &[Option<Vec<f32>>]) -> (Self, usize) {
        let (embedding, found) = crate::glove::apply(self.embedding, rows);
        (Self { embedding, ..self }, found)
    }
}

impl<B: Backend> StepDecoder<B> for TransformerCaptionDecoder<B> {
    type State = TransformerState<B>;

    fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: TransformerState<B>,
    ) -> (Tensor<B, 2>, TransformerState<B>) {
        TransformerCaptionDecoder::step(self, tokens, state)
    }

    fn select(
        &self,
        state: TransformerState<B>,
        indices: Tensor<B, 1, Int>,
    ) -> TransformerState<B> {
        state.select(indices)
    }
}
