//! `TrainModel`: the captioner with its training and validation steps for burn-train.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use caplab_data::vocab::Vocab;
use caplab_models::attention::grid_to_sequence;
use caplab_models::search::SearchSpec;
use caplab_models::{Captioner, Decoder, Features};

use crate::batch::CaptionBatch;
use crate::metrics::{CaptionsInput, LossInput, TrainItem, ValidItem};

/// The captioner as burn-train sees it: teacher-forced loss, and greedy captions on validation.
#[derive(Module, Debug)]
pub struct TrainModel<B: Backend> {
    /// The model being trained.
    pub captioner: Captioner<B>,
    /// Maximum words of validation captions.
    #[module(skip)]
    pub max_len: usize,
    /// Label smoothing ε of the training loss.
    #[module(skip)]
    pub label_smoothing: f64,
}

/// Mean cross-entropy over non-`<pad>` targets (label-smoothed by `epsilon`), and how many
/// targets that is. With smoothing, each target's loss is `(1-ε)·(-log p_y) + ε·mean_v(-log p_v)`.
pub fn caption_loss<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    epsilon: f64,
) -> (Tensor<B, 1>, usize) {
    let [n, t, v] = logits.dims();
    let logp = log_softmax(logits.reshape([n * t, v]), 1);
    let targets = targets.reshape([n * t, 1]);
    let mut per_token = logp
        .clone()
        .gather(1, targets.clone())
        .reshape([n * t])
        .neg();
    if epsilon > 0.0 {
        let uniform = logp.mean_dim(1).reshape([n * t]).neg();
        per_token = per_token.mul_scalar(1.0 - epsilon) + uniform.mul_scalar(epsilon);
    }
    let mask = targets
        .reshape([n * t])
        .not_equal_elem(Vocab::PAD as i64)
        .float();
    let tokens: f64 = mask.clone().sum().into_scalar_f64();
    let loss = (per_token * mask).sum().div_scalar(tokens.max(1.0));
    (loss, tokens as usize)
}

trait IntoScalarF64 {
    fn into_scalar_f64(self) -> f64;
}

impl<B: Backend> IntoScalarF64 for Tensor<B, 1> {
    fn into_scalar_f64(self) -> f64 {
        self.into_data().iter::<f64>().next().unwrap_or(0.0)
    }
}

/// Decoder features of a batch: from cached features [N, F, 1, 1] / [N, C, h, w], or by
/// running the encoder on images.
pub fn batch_features<B: Backend>(
    captioner: &Captioner<B>,
    values: Tensor<B, 4>,
    precomputed: bool,
) -> Features<B> {
    if !precomputed {
        return captioner.features(values);
    }
    match &captioner.decoder {
        Decoder::Rnn(_) => {
            let [n, f, _, _] = values.dims();
            Features::Pooled(values.reshape([n, f]))
        }
        Decoder::Attention(_) => Features::Grid(grid_to_sequence(values)),
    }
}

impl<B: Backend> TrainModel<B> {
    fn loss(&self, batch: &CaptionBatch<B>, epsilon: f64) -> (Tensor<B, 1>, usize) {
        let features = batch_features(&self.captioner, batch.images.clone(), batch.precomputed)
            .repeat_rows(batch.captions_per_image);
        let out = self
            .captioner
            .forward_features(features, batch.inputs.clone());
        let (loss, tokens) = caption_loss(out.logits, batch.targets.clone(), epsilon);
        let attention = out.alphas.and_then(|alphas| {
            let mask = batch
                .targets
                .clone()
                .not_equal_elem(Vocab::PAD as i64)
                .float();
            self.captioner.attention_loss(alphas, mask)
        });
        match attention {
            Some(extra) => (loss + extra, tokens),
            None => (loss, tokens),
        }
    }
}

impl<B: AutodiffBackend> TrainStep for TrainModel<B> {
    type Input = CaptionBatch<B>;
    type Output = TrainItem;

    fn step(&self, batch: CaptionBatch<B>) -> TrainOutput<TrainItem> {
        let (loss, tokens) = self.loss(&batch, self.label_smoothing);
        let mean = loss.clone().into_scalar_f64();
        let grads = loss.backward();
        TrainOutput::new(
            self,
            grads,
            TrainItem {
                loss: LossInput { mean, tokens },
            },
        )
    }
}

impl<B: Backend> InferenceStep for TrainModel<B> {
    type Input = CaptionBatch<B>;
    type Output = ValidItem;

    fn step(&self, batch: CaptionBatch<B>) -> ValidItem {
        // Validation loss is the plain cross-entropy, comparable across smoothing settings.
        let (loss, tokens) = self.loss(&batch, 0.0);
        let features = batch_features(&self.captioner, batch.images.clone(), batch.precomputed);
        let search = SearchSpec::Greedy {
            max_len: self.max_len,
        };
        let hyps = self
            .captioner
            .caption(features, &search, Vocab::SOS, Vocab::EOS, None);
        ValidItem {
            loss: LossInput {
                mean: loss.into_scalar_f64(),
                tokens,
            },
            captions: CaptionsInput {
                indices: batch.indices.clone(),
                tokens: hyps.into_iter().map(|h| h.tokens).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    #[test]
    fn loss_ignores_padding_and_smoothing_matches_its_formula() {
        let device = Default::default();
        // Two rows of two steps over a vocabulary of 5; the second row's second step is <pad>.
        let logits = Tensor::<NdArray, 3>::from_data(
            TensorData::new(
                vec![
                    0.1f32, 2.0, 0.3, -1.0, 0.5, 1.0, 0.0, 0.2, 0.3, 0.4, //
                    -0.5, 0.7, 1.5, 0.0, 0.1, 9.0, -9.0, 3.0, 2.0, 1.0,
                ],
                [2, 2, 5],
            ),
            &device,
        );
        let targets = Tensor::<NdArray, 2, Int>::from_data(
            TensorData::new(vec![4i64, 2, 3, 0], [2, 2]),
            &device,
        );
        let rows = [
            [0.1f64, 2.0, 0.3, -1.0, 0.5],
            [1.0, 0.0, 0.2, 0.3, 0.4],
            [-0.5, 0.7, 1.5, 0.0, 0.1],
        ];
        let picks = [4usize, 2, 3];
        let lse = |r: &[f64; 5]| r.iter().map(|x| x.exp()).sum::<f64>().ln();
        let nll: f64 = rows
            .iter()
            .zip(picks)
            .map(|(r, p)| lse(r) - r[p])
            .sum::<f64>()
            / 3.0;
        let (loss, tokens) = caption_loss(logits.clone(), targets.clone(), 0.0);
        assert_eq!(tokens, 3);
        assert!((loss.into_scalar_f64() - nll).abs() < 1e-5);

        let eps = 0.1;
        let smooth: f64 = rows
            .iter()
            .zip(picks)
            .map(|(r, p)| {
                let uniform = r.iter().map(|x| lse(r) - x).sum::<f64>() / 5.0;
                (1.0 - eps) * (lse(r) - r[p]) + eps * uniform
            })
            .sum::<f64>()
            / 3.0;
        let (loss, _) = caption_loss(logits, targets, eps);
        assert!((loss.into_scalar_f64() - smooth).abs() < 1e-5);
    }
}
