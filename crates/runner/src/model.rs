//! `TrainModel`: the captioner with its training and validation steps for burn-train.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use caplab_data::vocab::Vocab;
use caplab_models::search::GreedySearch;
use caplab_models::Captioner;

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
}

/// Mean cross-entropy over non-`<pad>` targets, and how many targets that is.
pub fn caption_loss<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> (Tensor<B, 1>, usize) {
    let [n, t, v] = logits.dims();
    let logp = log_softmax(logits.reshape([n * t, v]), 1);
    let targets = targets.reshape([n * t, 1]);
    let picked = logp.gather(1, targets.clone()).reshape([n * t]);
    let mask = targets.reshape([n * t]).not_equal_elem(Vocab::PAD as i64).float();
    let tokens: f64 = mask.clone().sum().into_scalar_f64();
    let loss = (picked * mask).sum().neg().div_scalar(tokens.max(1.0));
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

impl<B: Backend> TrainModel<B> {
    fn loss(&self, batch: &CaptionBatch<B>) -> (Tensor<B, 1>, usize) {
        let logits = self.captioner.forward(
            batch.images.clone(),
            batch.inputs.clone(),
            batch.captions_per_image,
        );
        caption_loss(logits, batch.targets.clone())
    }
}

impl<B: AutodiffBackend> TrainStep for TrainModel<B> {
    type Input = CaptionBatch<B>;
    type Output = TrainItem;

    fn step(&self, batch: CaptionBatch<B>) -> TrainOutput<TrainItem> {
        let (loss, tokens) = self.loss(&batch);
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
        let (loss, tokens) = self.loss(&batch);
        let features = self.captioner.encode(batch.images.clone());
        let search = GreedySearch {
            max_len: self.max_len,
            sos: Vocab::SOS,
            eos: Vocab::EOS,
        };
        let hyps = search.decode(&self.captioner.decoder, features);
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
