//! `AttentionDecoder`: the Show, Attend and Tell LSTM decoder with soft attention.
//!
//! Mirrors sgrvinod's PyTorch `DecoderWithAttention` (same parameter names, so its state_dict
//! loads with [`load_pytorch_attention_decoder`]): `h0, c0 = init_h/init_c(mean_l a_l)`; per step
//! `context, alpha = attention(a, h)`, `context *= sigmoid(f_beta(h))` (the gating scalar β),
//! `h, c = lstm([embed(prev), context], (h, c))`, `logits = fc(dropout(h))`.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, TensorSnapshot};
use serde::{Deserialize, Serialize};

use super::record::{greedy_with_maps, AttentionMap};
use super::soft_attention::{SoftAttention, SoftAttentionConfig};
use crate::import::{cast_float, check_applied, read_snapshots, transposed, ImportError};
use crate::rnn::{CellKind, Rnn, RnnConfig, RnnState};
use crate::search::{GreedySearch, Hypothesis, StepDecoder};
use crate::spec_error::{at_least_one, dropout, SpecError};

/// The `[model.attention]` section of an experiment spec: the soft attention decoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttentionDecoderConfig {
    /// Word embedding size `E`.
    pub embed_dim: usize,
    /// LSTM hidden size `H`.
    pub hidden_dim: usize,
    /// Hidden size `A` of the attention MLP.
    pub attention_dim: usize,
    /// Dropout before the vocabulary head (training only).
    pub dropout: f64,
    /// Weight λ of the doubly stochastic attention regularisation.
    pub alpha_c: f64,
}

impl Default for AttentionDecoderConfig {
    fn default() -> Self {
        Self {
            embed_dim: 128,
            hidden_dim: 256,
            attention_dim: 256,
            dropout: 0.5,
            alpha_c: 1.0,
        }
    }
}

impl AttentionDecoderConfig {
    /// Checks the `[model.attention]` values: sizes ≥ 1, `dropout` in `[0, 1)`, `alpha_c` ≥ 0.
    pub fn validate(&self) -> Result<(), SpecError> {
        at_least_one("model.attention.embed_dim", self.embed_dim)?;
        at_least_one("model.attention.hidden_dim", self.hidden_dim)?;
        at_least_one("model.attention.attention_dim", self.attention_dim)?;
        dropout("model.attention.dropout", self.dropout)?;
        if !(self.alpha_c.is_finite() && self.alpha_c >= 0.0) {
            return Err(SpecError::new(
                "model.attention.alpha_c",
                format!("must be a number ≥ 0, got {}", self.alpha_c),
            ));
        }
        Ok(())
    }

    /// Builds the decoder for annotations of size `encoder_dim` and a vocabulary of `vocab_size`.
    pub fn init<B: Backend>(
        &self,
        encoder_dim: usize,
        vocab_size: usize,
        device: &B::Device,
    ) -> AttentionDecoder<B> {
        AttentionDecoder {
            attention: SoftAttentionConfig::new(encoder_dim, self.hidden_dim, self.attention_dim)
                .init(device),
            embedding: EmbeddingConfig::new(vocab_size, self.embed_dim).init(device),
            init_h: LinearConfig::new(encoder_dim, self.hidden_dim).init(device),
            init_c: LinearConfig::new(encoder_dim, self.hidden_dim).init(device),
            f_beta: LinearConfig::new(self.hidden_dim, encoder_dim).init(device),
            lstm: RnnConfig::new(
                CellKind::Lstm,
                self.embed_dim + encoder_dim,
                self.hidden_dim,
            )
            .init(device),
            fc: LinearConfig::new(self.hidden_dim, vocab_size).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            alpha_c: self.alpha_c,
        }
    }
}

/// LSTM decoder attending over the encoder's spatial grid at every step.
#[derive(Module, Debug)]
pub struct AttentionDecoder<B: Backend> {
    /// Soft attention over the annotations.
    pub attention: SoftAttention<B>,
    /// Word embedding `V -> E`.
    pub embedding: Embedding<B>,
    /// Initial hidden state from the mean annotation `D -> H`.
    pub init_h: Linear<B>,
    /// Initial cell state from the mean annotation `D -> H`.
    pub init_c: Linear<B>,
    /// Gating scalar β (one per channel) from the hidden state `H -> D`.
    pub f_beta: Linear<B>,
    /// One-layer LSTM on `[embedding, gated context]` (PyTorch's `decode_step` LSTMCell).
    pub lstm: Rnn<B>,
    /// Vocabulary head `H -> V`.
    pub fc: Linear<B>,
    /// Dropout before the head (teacher-forced forward only).
    pub dropout: Dropout,
    /// Weight of the doubly stochastic regularisation.
    #[module(skip)]
    pub alpha_c: f64,
}

/// What the attention decoder carries between steps; `alpha` keeps the last attention map.
#[derive(Clone, Debug)]
pub struct AttentionState<B: Backend> {
    /// Annotations `[N, L, D]`.
    pub encoder_out: Tensor<B, 3>,
    /// Cached `encoder_att(encoder_out)` `[N, L, A]`.
    pub encoder_att: Tensor<B, 3>,
    /// LSTM state (`h`, `c` `[1, N, H]`).
    pub rnn: RnnState<B>,
    /// Attention weights `[N, L]` of the last step (all zero before the first step).
    pub alpha: Tensor<B, 2>,
}

impl<B: Backend> AttentionState<B> {
    /// Reorders (or repeats) the batch rows, as beam search needs.
    pub fn select(self, indices: Tensor<B, 1, Int>) -> Self {
        Self {
            encoder_out: self.encoder_out.select(0, indices.clone()),
            encoder_att: self.encoder_att.select(0, indices.clone()),
            rnn: self.rnn.select(indices.clone()),
            alpha: self.alpha.select(0, indices),
        }
    }
}

impl<B: Backend> AttentionDecoder<B> {
    /// Teacher-forced logits `[N, T, V]` and attention weights `[N, T, L]` for annotations
    /// `[N, L, D]` and `inputs` `[N, T]` starting with `<sos>`.
    pub fn forward(
        &self,
        encoder_out: Tensor<B, 3>,
        inputs: Tensor<B, 2, Int>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [_, t] = inputs.dims();
        let words = self.embedding.forward(inputs);
        let mut state = self.start(encoder_out);
        let mut hiddens = Vec::with_capacity(t);
        let mut alphas = Vec::with_capacity(t);
        for step in 0..t {
            let word = words.clone().narrow(1, step, 1).squeeze_dim::<2>(1);
            let (h, next) = self.advance(word, state);
            state = next;
            hiddens.push(h);
            alphas.push(state.alpha.clone());
        }
        let hidden = Tensor::stack::<3>(hiddens, 1);
        let logits = self.fc.forward(self.dropout.forward(hidden));
        (logits, Tensor::stack(alphas, 1))
    }

    /// Doubly stochastic regularisation `alpha_c · mean_n Σ_l (1 − Σ_t mask_nt α_ntl)²` of
    /// `alphas` `[N, T, L]`; `mask` `[N, T]` is 1 where the target of step `t` is a word or
    /// `<eos>` and 0 where it is padding, so padded steps add no attention. Sums over locations
    /// as in the paper (sgrvinod's tutorial also averages over them, i.e. divides by `L`).
    pub fn doubly_stochastic_loss(&self, alphas: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
        let [n, _, _] = alphas.dims();
        let attended = (alphas * mask.unsqueeze_dim::<3>(2)).sum_dim(1);
        let deficit = attended.neg().add_scalar(1.0);
        (deficit.clone() * deficit)
            .sum()
            .mul_scalar(self.alpha_c / n.max(1) as f64)
    }

    /// Starts decoding annotations `[N, L, D]`: state before the `<sos>` step.
    pub fn start(&self, encoder_out: Tensor<B, 3>) -> AttentionState<B> {
        let [n, l, _] = encoder_out.dims();
        let mean = encoder_out.clone().mean_dim(1).squeeze_dim::<2>(1);
        let h = self.init_h.forward(mean.clone()).unsqueeze_dim::<3>(0);
        let c = self.init_c.forward(mean).unsqueeze_dim::<3>(0);
        let encoder_att = self.attention.project_encoder(encoder_out.clone());
        let alpha = Tensor::zeros([n, l], &encoder_out.device());
        AttentionState {
            encoder_out,
            encoder_att,
            rnn: RnnState { h, c: Some(c) },
            alpha,
        }
    }

    /// One decoding step: previous tokens `[N]` → log-probabilities `[N, V]` and the next state.
    pub fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: AttentionState<B>,
    ) -> (Tensor<B, 2>, AttentionState<B>) {
        let [n] = tokens.dims();
        let word = self
            .embedding
            .forward(tokens.reshape([n, 1]))
            .squeeze_dim::<2>(1);
        let (h, state) = self.advance(word, state);
        (log_softmax(self.fc.forward(h), 1), state)
    }

    /// Greedy captions of annotations `[N, L, D]` with, per row, one attention map `[L]` per
    /// emitted word (`maps[row][word][l]`, locations in [`grid_to_sequence`](super::grid_to_sequence) order).
    pub fn attend_greedy(
        &self,
        search: &GreedySearch,
        encoder_out: Tensor<B, 3>,
    ) -> (Vec<Hypothesis>, Vec<Vec<Vec<f32>>>) {
        let [n, _, _] = encoder_out.dims();
        let device = encoder_out.device();
        greedy_with_maps(self, search, self.start(encoder_out), n, &device)
    }

    /// Vocabulary size of the head.
    pub fn vocab_size(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    /// Attention, gating and LSTM update for embedded words `[N, E]`: new `h` `[N, H]` and state.
    fn advance(
        &self,
        word: Tensor<B, 2>,
        state: AttentionState<B>,
    ) -> (Tensor<B, 2>, AttentionState<B>) {
        let hidden = state.rnn.h.clone().squeeze_dim::<2>(0);
        let (context, alpha) = self.attention.forward(
            state.encoder_out.clone(),
            Some(state.encoder_att.clone()),
            hidden.clone(),
        );
        let gate = sigmoid(self.f_beta.forward(hidden));
        let input = Tensor::cat(vec![word, gate * context], 1);
        let (h, rnn) = self.lstm.step(input, Some(state.rnn));
        let state = AttentionState {
            encoder_out: state.encoder_out,
            encoder_att: state.encoder_att,
            rnn,
            alpha,
        };
        (h, state)
    }
}

impl<B: Backend> StepDecoder<B> for AttentionDecoder<B> {
    type State = AttentionState<B>;

    fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: AttentionState<B>,
    ) -> (Tensor<B, 2>, AttentionState<B>) {
        AttentionDecoder::step(self, tokens, state)
    }

    fn select(&self, state: AttentionState<B>, indices: Tensor<B, 1, Int>) -> AttentionState<B> {
        state.select(indices)
    }
}

impl<B: Backend> AttentionMap<B> for AttentionState<B> {
    fn last_map(&self) -> Tensor<B, 2> {
        self.alpha.clone()
    }
}

/// Loads a `.safetensors` state_dict of sgrvinod's `DecoderWithAttention` into `decoder`; only
/// keys starting with `prefix` (e.g. `""` or `decoder.`) are read, `decode_step.*` feeds the LSTM.
pub fn load_pytorch_attention_decoder<B: Backend>(
    mut decoder: AttentionDecoder<B>,
    path: &Path,
    prefix: &str,
) -> Result<AttentionDecoder<B>, ImportError> {
    let all = read_snapshots(path, None)?;
    let snapshots: Vec<TensorSnapshot> = all
        .iter()
        .filter_map(|snapshot| {
            let key = snapshot.full_path();
            let key = key.strip_prefix(prefix)?;
            Some(cast_float::<B::FloatElem>(to_module_snapshot(
                snapshot, key,
            )))
        })
        .collect();
    let result = decoder.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    check_applied(path, result)?;
    Ok(decoder)
}

/// Renames a PyTorch key (prefix stripped) to the module path; `decode_step.weight_*` are
/// transposed to the `[in, 4H]` layout of [`PackedGates`](crate::rnn::PackedGates).
fn to_module_snapshot(snapshot: &TensorSnapshot, key: &str) -> TensorSnapshot {
    let Some(leaf) = key.strip_prefix("decode_step.") else {
        let mut snapshot = snapshot.clone();
        snapshot.path_stack = Some(key.split('.').map(str::to_string).collect());
        return snapshot;
    };
    let path: Vec<String> = ["lstm", "layers", "0", leaf]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let is_weight = leaf.starts_with("weight_") && snapshot.shape.num_dims() == 2;
    if !is_weight {
        let mut snapshot = snapshot.clone();
        snapshot.path_stack = Some(path);
        return snapshot;
    }
    transposed(snapshot, path)
}
