//! The training step: [`TrainModel`], the captioner as burn-train sees it — the loss of a batch
//! (teacher-forced cross-entropy, scheduled sampling, or SCST's policy gradient after the
//! cross-entropy epochs), its gradients (optionally split over CPU threads), global-norm
//! clipping, the encoder's fine-tuning rate, and greedy captions on validation.

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burn::tensor::ElementConversion;
use burn::tensor::{Bool, FloatDType, Int, Tensor, TensorData};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use caplab_data::vocab::Vocab;
use caplab_models::search::{SearchSpec, SplitMix64};
use caplab_models::{Captioner, DecoderChoice, Features, Trainable};
use rayon::prelude::*;

use super::clip::clip_global_norm;
use super::loss::{caption_loss, matrix, policy_loss, IntoScalarF64};
use super::loss_metric::{LossInput, TrainItem, ValidItem};
use super::scst::{sample_mask, teacher_forcing, ScstStage};
use super::tally::{ScstStats, Tally};
use crate::batch::{batch_features, CaptionBatch};
use crate::spec::{ScheduledSampling, Spec};

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
    /// Scheduled sampling, when enabled.
    #[module(skip)]
    pub scheduled: Option<ScheduledSampling>,
    /// Training steps taken (shared by clones; sets the scheduled-sampling epoch).
    #[module(skip)]
    pub steps: Arc<AtomicUsize>,
    /// Batches per epoch.
    #[module(skip)]
    pub steps_per_epoch: usize,
    /// Seed of the per-step random streams (dropout, scheduled-sampling draws).
    #[module(skip)]
    pub seed: u64,
    /// Epochs after which the whole encoder trains (`model.encoder.finetune_after`).
    #[module(skip)]
    pub finetune_after: Option<usize>,
    /// Encoder learning rate while fine-tuning.
    #[module(skip)]
    pub finetune_lr: f64,
    /// Clip the global gradient norm to this (PyTorch's `clip_grad_norm_`), when set.
    #[module(skip)]
    pub clip_global_norm: Option<f64>,
    /// The current epoch's sums (losses, validation captions), read when the epoch ends.
    #[module(skip)]
    pub tally: Arc<Tally>,
    /// Cross-entropy epochs; SCST steps follow them when `scst` is set.
    #[module(skip)]
    pub xe_epochs: usize,
    /// Self-critical training after the cross-entropy epochs (`[train.scst]`).
    #[module(skip)]
    pub scst: Option<Arc<ScstStage>>,
    /// Threads of the split cross-entropy step (`train.decoder_threads`; 1: not split). Set
    /// only where the split applies (RNN decoder, no dropout); see [`TrainModel::split_cross_entropy`].
    #[module(skip)]
    pub decoder_threads: usize,
    /// Threads a validation (and SCST greedy-baseline) decoding batch is split over
    /// ([`Resolved::decode_threads`](crate::backend::Resolved::decode_threads)).
    #[module(skip)]
    pub decode_threads: usize,
}

/// Moves the gradients of the parameters it visits from one set to another.
struct MoveGrads<'a, IB: Backend> {
    from: &'a mut GradientsParams,
    to: GradientsParams,
    _backend: std::marker::PhantomData<IB>,
}

impl<B: Backend, IB: Backend> ModuleVisitor<B> for MoveGrads<'_, IB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.from.remove::<IB, D>(param.id) {
            self.to.register::<IB, D>(param.id, g);
        }
    }
}

/// Re-registers each gradient it visits as a fresh row-major tensor (multiplied by 1: exact).
/// burn-flex returns convolution weight gradients as permuted views, and every element-wise op
/// on a view walks it one element at a time: Adam's moment updates and the clipping norm on
/// those views took 19 % of a ResNet-18 training epoch. On a row-major tensor the multiply is one
/// in-place pass.
struct RowMajor<'a, IB: Backend> {
    grads: &'a mut GradientsParams,
    _backend: std::marker::PhantomData<IB>,
}

impl<B: Backend, IB: Backend> ModuleVisitor<B> for RowMajor<'_, IB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<IB, D>(param.id) {
            self.grads.register::<IB, D>(param.id, g.mul_scalar(1.0));
        }
    }
}

impl<B: Backend> TrainModel<B> {
    /// A model for decoding only (`caplab eval`): the training-only settings are inert.
    pub fn for_inference(captioner: Captioner<B>, max_len: usize) -> Self {
        Self {
            captioner,
            max_len,
            label_smoothing: 0.0,
            scheduled: None,
            steps: Arc::new(AtomicUsize::new(0)),
            steps_per_epoch: 1,
            seed: 0,
            finetune_after: None,
            finetune_lr: 0.0,
            clip_global_norm: None,
            tally: Arc::new(Tally::default()),
            xe_epochs: 0,
            scst: None,
            decoder_threads: 1,
            decode_threads: 1,
        }
    }

    /// Features of a training batch: the whole encoder in the graph while fine-tuning, else
    /// its trainable part (or the cached features).
    pub fn train_features(&self, batch: &CaptionBatch<B>) -> Features<B> {
        if self.finetuning() && !batch.precomputed {
            self.captioner
                .features_with(batch.images.clone(), Trainable::All)
        } else {
            batch_features(&self.captioner, batch.images.clone(), batch.precomputed)
        }
    }

    fn loss(
        &self,
        batch: &CaptionBatch<B>,
        epsilon: f64,
        sample_prob: f64,
    ) -> (Tensor<B, 1>, usize) {
        let features = self
            .train_features(batch)
            .repeat_rows(batch.captions_per_image);
        if sample_prob > 0.0 {
            let mask = self.sampling_mask(batch.inputs.dims(), sample_prob, &batch.inputs.device());
            if let Some(logits) =
                self.captioner
                    .forward_scheduled(features.clone(), batch.inputs.clone(), mask)
            {
                return caption_loss(logits, batch.targets.clone(), epsilon);
            }
        }
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
            // The loss is f32 (see `caption_loss`); the regulariser is in the run's precision.
            Some(extra) => (loss + extra.cast(FloatDType::F32), tokens),
            None => (loss, tokens),
        }
    }
}

impl<B: Backend> TrainModel<B> {
    /// Seeded Bernoulli(`p`) draws, one per input position; position 0 (`<sos>`) never samples.
    fn sampling_mask(&self, [n, t]: [usize; 2], p: f64, device: &B::Device) -> Tensor<B, 2, Bool> {
        let step = self.steps.load(Ordering::Relaxed) as u64;
        let mut rng = SplitMix64::new(self.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let draws: Vec<bool> = (0..n * t)
            .map(|i| i % t != 0 && rng.next_f64() < p)
            .collect();
        Tensor::from_data(TensorData::new(draws, [n, t]), device)
    }

    /// 1-based epoch of the current training step.
    fn epoch(&self) -> usize {
        self.steps.load(Ordering::Relaxed) / self.steps_per_epoch.max(1) + 1
    }

    /// Whether the whole encoder trains at this step (fine-tuning phase).
    fn finetuning(&self) -> bool {
        self.finetune_after.is_some_and(|n| self.epoch() > n)
    }

    /// Scheduled-sampling probability of the current step.
    fn sample_prob(&self) -> f64 {
        match &self.scheduled {
            Some(s) => s.probability(self.epoch()),
            None => 0.0,
        }
    }
}

/// `train.decoder_threads` where the split step applies: an RNN decoder without dropout (the
/// backend's random generator is global, so dropout draws from several threads would interleave
/// differently from run to run). 1 otherwise.
pub fn split_threads(spec: &Spec) -> usize {
    match &spec.model.decoder {
        DecoderChoice::Rnn(d)
            if d.dropout == 0.0 && d.project_dropout == 0.0 && d.embed_dropout == 0.0 =>
        {
            spec.train.decoder_threads.max(1)
        }
        _ => 1,
    }
}

impl<B: AutodiffBackend> TrainModel<B> {
    /// The cross-entropy step with the decoder's forward and backward split over `parts`
    /// threads, each on an equal share of the batch's images (and their captions).
    ///
    /// The encoder runs once on the whole batch (so batch norm sees every image); each thread
    /// runs a copy of the model that shares the weights (`fork`: new autodiff leaves, same
    /// parameter ids) on its share of the detached features, with its summed token losses
    /// divided by the whole batch's token count, so the shares' gradients add up to the
    /// whole batch's. Their feature gradients, concatenated, are then pushed back through the
    /// encoder (the gradient of `Σ features · g`). Up to float summation order this is the
    /// single-threaded step. Returns the parameter gradients, the batch's mean loss and its
    /// token count.
    pub fn split_cross_entropy(
        &self,
        batch: &CaptionBatch<B>,
        epsilon: f64,
        parts: usize,
    ) -> (GradientsParams, f64, usize) {
        let device = batch.inputs.device();
        let features = self.train_features(batch);
        let images = features.len();
        let cpi = batch.captions_per_image;
        let total_tokens = batch
            .targets
            .clone()
            .not_equal_elem(Vocab::PAD as i64)
            .int()
            .sum()
            .into_scalar()
            .elem::<i64>()
            .max(1) as f64;
        // The RNN decoder reads a pooled vector; a grid is averaged as `forward_features` does.
        let tracked = match features {
            Features::Pooled(x) => x,
            Features::Grid(x) => x.mean_dim(1).squeeze_dim::<2>(1),
        };
        let inner = tracked.clone().inner();
        let parts = parts.clamp(1, images.max(1));
        let shares: Vec<(usize, usize)> = (0..parts)
            .map(|k| (k * images / parts, (k + 1) * images / parts))
            .filter(|(a, b)| b > a)
            .collect();
        // On rayon's pool: its threads persist across steps, so each keeps its allocator heap
        // (fresh threads per step would fault fresh pages in). `collect` keeps the share order.
        let results: Vec<_> = shares
            .par_iter()
            .map(|&(from, to)| {
                let captioner = self.captioner.clone().fork(&device);
                let share = Tensor::<B, 2>::from_inner(inner.clone().narrow(0, from, to - from))
                    .require_grad();
                let rows = (from * cpi, (to - from) * cpi);
                let inputs = batch.inputs.clone().narrow(0, rows.0, rows.1);
                let targets = batch.targets.clone().narrow(0, rows.0, rows.1);
                let logits = captioner
                    .forward_features(Features::Pooled(share.clone()).repeat_rows(cpi), inputs)
                    .logits;
                let (mean, tokens) = caption_loss(logits, targets, epsilon);
                let loss = mean.mul_scalar(tokens.max(1) as f64 / total_tokens);
                let value = loss.clone().into_scalar_f64();
                let grads = loss.backward();
                let feature_grad = share.grad(&grads);
                let params = GradientsParams::from_grads(grads, &captioner);
                (params, feature_grad, value, tokens)
            })
            .collect();
        let mut sum = burn::optim::GradientsAccumulator::<Captioner<B>>::new();
        let mut mean = 0.0;
        let mut tokens = 0;
        let mut feature_grads = Vec::with_capacity(results.len());
        for (params, feature_grad, value, n) in results {
            sum.accumulate(&self.captioner, params);
            mean += value;
            tokens += n;
            if let Some(g) = feature_grad {
                feature_grads.push(g);
            }
        }
        // Back through the encoder: d/dθ Σ features·g. The tracked zero makes the sum a graph
        // root even when the features are constants (frozen or cached), whose backward is empty.
        if feature_grads.len() == shares.len() {
            let g = Tensor::<B, 2>::from_inner(Tensor::cat(feature_grads, 0));
            let anchor = Tensor::<B, 1>::zeros([1], &device).require_grad();
            let grads = ((tracked * g).sum() + anchor).backward();
            sum.accumulate(
                &self.captioner,
                GradientsParams::from_grads(grads, &self.captioner),
            );
        }
        (sum.grads(), mean, tokens)
    }
}

impl<B: AutodiffBackend> TrainModel<B> {
    /// The SCST loss of a batch: [`ScstStage::rollouts`] samples `k` captions per image (and the
    /// greedy baseline) with the model's inference copy; the autodiff model then runs
    /// teacher-forced on the samples for [`policy_loss`]. One encoder pass serves both: its
    /// detached values feed the sampling. Returns the loss, the number of samples and the step's
    /// figures.
    fn scst_loss(
        &self,
        batch: &CaptionBatch<B>,
        stage: &ScstStage,
    ) -> (Tensor<B, 1>, usize, ScstStats) {
        let k = stage.spec.samples_per_image;
        let device = batch.images.device();
        let t0 = std::time::Instant::now();
        let train_features = self.train_features(batch);
        let encode_s = t0.elapsed().as_secs_f64();
        let step = self.steps.load(Ordering::Relaxed) as u64;
        let rollouts = stage.rollouts(
            &self.captioner.valid(),
            train_features.inner(),
            &batch.indices,
            self.seed,
            step,
            self.decode_threads,
        );
        let mut stats = rollouts.stats;
        stats.model_s += encode_s;

        let t2 = std::time::Instant::now();
        let rows = rollouts.rows;
        let n = rows.len();
        let (inputs, targets, t) = teacher_forcing(&rows);
        let mask = sample_mask(&rows, Vocab::EOS);
        let kept: f32 = mask.iter().sum();
        let features = train_features.repeat_rows(k);
        let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [n, t]), &device);
        let logits = self.captioner.forward_features(features, inputs).logits;
        let mask_t = matrix::<B>(mask, n, t, &device);
        // Entropy of the sampling distribution at the kept positions (a detached diagnostic).
        stats.entropy = {
            let [_, _, v] = logits.dims();
            let logits = logits.clone().inner().cast(FloatDType::F32);
            let logp = log_softmax(logits.reshape([n * t, v]), 1);
            let h = (logp.clone().exp() * logp).sum_dim(1).neg().reshape([n, t]);
            let total: f64 = (h * mask_t.clone().inner().cast(FloatDType::F32))
                .sum()
                .into_data()
                .iter::<f64>()
                .next()
                .unwrap_or(0.0);
            total / f64::from(kept.max(1.0))
        };
        let loss = policy_loss(
            logits,
            Tensor::from_data(TensorData::new(targets, [n, t]), &device),
            mask_t,
            Tensor::from_data(TensorData::new(rollouts.advantages, [n]), &device),
        );
        stats.model_s += t2.elapsed().as_secs_f64();
        stage.log(&stats, step as usize + 1);
        (loss, n, stats)
    }
}

impl<B: AutodiffBackend> TrainStep for TrainModel<B> {
    type Input = CaptionBatch<B>;
    type Output = TrainItem;

    fn step(&self, batch: CaptionBatch<B>) -> TrainOutput<TrainItem> {
        // Every random draw of step s (dropout) comes from a stream seeded by (seed, s), so a run
        // resumed at an epoch boundary draws exactly what the uninterrupted run drew.
        let step = self.steps.load(Ordering::Relaxed) as u64;
        B::seed(
            &batch.inputs.device(),
            self.seed ^ step.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        let scst_phase = self.scst.is_some() && self.epoch() > self.xe_epochs;
        let sample_prob = self.sample_prob();
        if self.decoder_threads > 1 && !scst_phase && sample_prob == 0.0 {
            let (grads, mean, tokens) =
                self.split_cross_entropy(&batch, self.label_smoothing, self.decoder_threads);
            self.steps.fetch_add(1, Ordering::Relaxed);
            self.tally.add_train(mean, tokens);
            return TrainOutput {
                grads,
                item: TrainItem {
                    loss: LossInput { mean, tokens },
                },
            };
        }
        let (loss, tokens) = match &self.scst {
            Some(stage) if scst_phase => {
                let (loss, samples, stats) = self.scst_loss(&batch, stage);
                self.tally.add_scst(&stats);
                (loss, samples)
            }
            _ => self.loss(&batch, self.label_smoothing, sample_prob),
        };
        self.steps.fetch_add(1, Ordering::Relaxed);
        let mean = loss.clone().into_scalar_f64();
        self.tally.add_train(mean, tokens);
        let grads = loss.backward();
        TrainOutput::new(
            self,
            grads,
            TrainItem {
                loss: LossInput { mean, tokens },
            },
        )
    }

    fn optimize<B2, O>(self, optim: &mut O, lr: f64, mut grads: GradientsParams) -> Self
    where
        B2: AutodiffBackend,
        O: Optimizer<Self, B2>,
        Self: AutodiffModule<B2>,
    {
        self.visit(&mut RowMajor::<B2::InnerBackend> {
            grads: &mut grads,
            _backend: std::marker::PhantomData,
        });
        if let Some(max_norm) = self.clip_global_norm {
            clip_global_norm::<B, B2::InnerBackend, _>(&self, &mut grads, max_norm);
        }
        // `step` already counted this batch: the phase is that of the batch just trained.
        let trained_epoch = (self.steps.load(Ordering::Relaxed).saturating_sub(1))
            / self.steps_per_epoch.max(1)
            + 1;
        match self.finetune_after {
            Some(n) if trained_epoch > n => {
                let mut split = MoveGrads::<B2::InnerBackend> {
                    from: &mut grads,
                    to: GradientsParams::new(),
                    _backend: std::marker::PhantomData,
                };
                self.captioner.encoder.visit(&mut split);
                let encoder_grads = split.to;
                let finetune_lr = self.finetune_lr;
                let model = optim.step(lr, self, grads);
                optim.step(finetune_lr, model, encoder_grads)
            }
            _ => optim.step(lr, self, grads),
        }
    }
}

impl<B: Backend> InferenceStep for TrainModel<B> {
    type Input = CaptionBatch<B>;
    type Output = ValidItem;

    fn step(&self, batch: CaptionBatch<B>) -> ValidItem {
        // Validation loss is the plain cross-entropy, comparable across smoothing settings.
        let (loss, tokens) = self.loss(&batch, 0.0, 0.0);
        let features = batch_features(&self.captioner, batch.images.clone(), batch.precomputed);
        let search = SearchSpec::Greedy {
            max_len: self.max_len,
        };
        let hyps = self.captioner.caption(
            features,
            &search,
            Vocab::SOS,
            Vocab::EOS,
            None,
            self.decode_threads,
        );
        let mean = loss.into_scalar_f64();
        self.tally.add_valid(
            mean,
            tokens,
            &batch.indices,
            hyps.into_iter().map(|h| h.tokens).collect(),
        );
        ValidItem {
            loss: LossInput { mean, tokens },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

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

#[cfg(test)]
mod finetune_tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::optim::AdamConfig;
    use burn::tensor::Distribution;
    use caplab_models::encoder::{Arch, Encoder};
    use caplab_models::{DecoderSpec, EncoderSpec, ModelSpec};

    type B = Autodiff<NdArray>;

    fn stem(model: &TrainModel<B>) -> Vec<f32> {
        match &model.captioner.encoder {
            Encoder::ResNet(r) => r.conv1.weight.val().into_data().iter::<f32>().collect(),
            _ => panic!("resnet_tiny is a ResNet"),
        }
    }

    #[test]
    fn the_whole_encoder_trains_only_after_finetune_after_epochs() {
        let device = Default::default();
        let spec = ModelSpec {
            encoder: EncoderSpec {
                arch: Arch::ResnetTiny,
                weights: None,
                trainable: Trainable::LastBlock,
                finetune_after: Some(1),
                finetune_lr: 1e-2,
                transform_input: None,
            },
            decoder: DecoderChoice::Rnn(DecoderSpec::default()),
            word_vectors: None,
        };
        let mut model = TrainModel {
            captioner: spec.init::<B>(9, &device),
            max_len: 5,
            label_smoothing: 0.0,
            scheduled: None,
            steps: Arc::new(AtomicUsize::new(0)),
            steps_per_epoch: 1,
            seed: 1,
            finetune_after: Some(1),
            finetune_lr: 1e-2,
            clip_global_norm: None,
            tally: Default::default(),
            xe_epochs: 1,
            scst: None,
            decoder_threads: 1,
            decode_threads: 1,
        };
        let batch = CaptionBatch {
            images: Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Default, &device),
            precomputed: false,
            inputs: Tensor::from_data(TensorData::new(vec![1i64, 4, 5, 1, 6, 7], [2, 3]), &device),
            targets: Tensor::from_data(TensorData::new(vec![4i64, 5, 2, 6, 7, 2], [2, 3]), &device),
            captions_per_image: 1,
            indices: vec![0, 1],
        };
        let mut optim = AdamConfig::new().init::<B, TrainModel<B>>();
        let mut stems = vec![stem(&model)];
        for _ in 0..2 {
            let out = TrainStep::step(&model, batch.clone());
            model = model.optimize(&mut optim, 1e-2, out.grads);
            stems.push(stem(&model));
        }
        assert_eq!(stems[0], stems[1], "epoch 1 trains the last block only");
        assert_ne!(stems[1], stems[2], "epoch 2 fine-tunes the whole encoder");
    }
}

#[cfg(test)]
mod scheduled_sampling_tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;
    use caplab_models::ModelSpec;

    type B = Autodiff<NdArray>;

    #[test]
    fn sampling_feeds_predictions_and_changes_the_loss_only_when_on() {
        let device = Default::default();
        <B as Backend>::seed(&device, 2);
        let spec: ModelSpec = toml::from_str(
            "[encoder]\narch = \"resnet_tiny\"\n\n[decoder]\nembed_dim = 8\nhidden_dim = 12\n",
        )
        .expect("model spec");
        let model = TrainModel {
            captioner: spec.init::<B>(9, &device),
            max_len: 5,
            label_smoothing: 0.0,
            scheduled: Some(ScheduledSampling {
                start_epoch: 2,
                ramp_epochs: 1,
                max_prob: 1.0,
            }),
            steps: Arc::new(AtomicUsize::new(0)),
            steps_per_epoch: 1,
            seed: 1,
            finetune_after: None,
            finetune_lr: 0.0,
            clip_global_norm: None,
            tally: Default::default(),
            xe_epochs: 1,
            scst: None,
            decoder_threads: 1,
            decode_threads: 1,
        };
        let batch = CaptionBatch {
            images: Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Default, &device),
            precomputed: false,
            inputs: Tensor::from_data(
                TensorData::new(vec![1i64, 4, 5, 6, 1, 6, 7, 8], [2, 4]),
                &device,
            ),
            targets: Tensor::from_data(
                TensorData::new(vec![4i64, 5, 6, 2, 6, 7, 8, 2], [2, 4]),
                &device,
            ),
            captions_per_image: 1,
            indices: vec![0, 1],
        };
        let loss = |p: f64| model.loss(&batch, 0.0, p).0.into_scalar_f64();
        let teacher = loss(0.0);
        assert_eq!(model.sample_prob(), 0.0, "epoch 1 is before start_epoch");
        model.steps.store(1, Ordering::Relaxed);
        assert_eq!(model.sample_prob(), 1.0, "epoch 2 samples every position");
        let sampled = loss(model.sample_prob());
        assert!(
            (sampled - teacher).abs() > 1e-6,
            "feeding predictions changes the loss: {teacher} vs {sampled}"
        );
    }
}

#[cfg(test)]
mod split_step_tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;
    use caplab_models::ModelSpec;

    type B = Autodiff<NdArray>;
    type IB = NdArray;

    /// Largest |a − b| over every parameter's gradient, and the parameters only one side has.
    struct CompareGrads<'a> {
        a: &'a GradientsParams,
        b: &'a GradientsParams,
        max_diff: f32,
        max_abs: f32,
        compared: usize,
        one_sided: usize,
    }

    impl ModuleVisitor<B> for CompareGrads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            match (self.a.get::<IB, D>(param.id), self.b.get::<IB, D>(param.id)) {
                (Some(a), Some(b)) => {
                    let a: Vec<f32> = a.into_data().iter::<f32>().collect();
                    let b: Vec<f32> = b.into_data().iter::<f32>().collect();
                    for (x, y) in a.iter().zip(&b) {
                        self.max_diff = self.max_diff.max((x - y).abs());
                        self.max_abs = self.max_abs.max(x.abs());
                    }
                    self.compared += 1;
                }
                (None, None) => {}
                _ => self.one_sided += 1,
            }
        }
    }

    /// The split step (3 uneven shares, a ResNet trained end to end, label smoothing) gives
    /// the single-threaded step's loss, token count and gradients, encoder included, up to
    /// float summation order.
    #[test]
    fn split_cross_entropy_gives_the_single_thread_gradients() {
        let device = Default::default();
        <B as Backend>::seed(&device, 3);
        let spec: ModelSpec = toml::from_str(
            "[encoder]\narch = \"resnet_tiny\"\ntrainable = \"all\"\n\n\
             [decoder]\nembed_dim = 8\nhidden_dim = 12\n",
        )
        .expect("model spec");
        let model = TrainModel {
            captioner: spec.init::<B>(9, &device),
            max_len: 5,
            label_smoothing: 0.1,
            scheduled: None,
            steps: Arc::new(AtomicUsize::new(0)),
            steps_per_epoch: 100,
            seed: 1,
            finetune_after: None,
            finetune_lr: 0.0,
            clip_global_norm: None,
            tally: Default::default(),
            xe_epochs: 100,
            scst: None,
            decoder_threads: 1,
            decode_threads: 1,
        };
        // 4 images × 2 captions; padding differs between captions.
        let inputs = vec![
            1i64, 4, 5, 6, 1, 6, 7, 0, 1, 8, 0, 0, 1, 4, 4, 5, 1, 5, 0, 0, 1, 6, 7, 8, 1, 7, 0, 0,
            1, 8, 6, 0,
        ];
        let targets: Vec<i64> = inputs
            .chunks(4)
            .flat_map(|row| {
                let words: Vec<i64> = row[1..].iter().copied().filter(|&w| w != 0).collect();
                let mut t = words.clone();
                t.push(2);
                t.resize(4, 0);
                t
            })
            .collect();
        let batch = CaptionBatch {
            images: Tensor::<B, 4>::random([4, 3, 32, 32], Distribution::Default, &device),
            precomputed: false,
            inputs: Tensor::from_data(TensorData::new(inputs, [8, 4]), &device),
            targets: Tensor::from_data(TensorData::new(targets, [8, 4]), &device),
            captions_per_image: 2,
            indices: vec![0, 1, 2, 3],
        };

        let single = TrainStep::step(&model, batch.clone());
        let (split, mean, tokens) = model.split_cross_entropy(&batch, 0.1, 3);
        assert_eq!(tokens, single.item.loss.tokens);
        assert!(
            (mean - single.item.loss.mean).abs() < 1e-6,
            "loss {mean} vs {}",
            single.item.loss.mean
        );
        let mut cmp = CompareGrads {
            a: &single.grads,
            b: &split,
            max_diff: 0.0,
            max_abs: 0.0,
            compared: 0,
            one_sided: 0,
        };
        model.visit(&mut cmp);
        assert_eq!(cmp.one_sided, 0, "the same parameters get gradients");
        let encoder_params = {
            let mut count = CompareGrads {
                a: &single.grads,
                b: &split,
                max_diff: 0.0,
                max_abs: 0.0,
                compared: 0,
                one_sided: 0,
            };
            model.captioner.encoder.visit(&mut count);
            count.compared
        };
        assert!(encoder_params > 0, "the encoder is trained end to end");
        assert!(cmp.max_abs > 0.0);
        assert!(
            cmp.max_diff <= 1e-5 * cmp.max_abs.max(1.0),
            "max gradient difference {:e} (largest gradient {:e}) over {} parameters",
            cmp.max_diff,
            cmp.max_abs,
            cmp.compared
        );
    }
}

#[cfg(test)]
mod scst_transformer_tests {
    use super::*;
    use crate::spec::ScstSpec;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;
    use caplab_models::ModelSpec;

    type B = Autodiff<NdArray>;

    /// SCST's policy pass on a Transformer decoder: teacher-forced on the sampled rows (`<eos>`
    /// kept where a caption ended, `<pad>` after it), [`policy_loss`] with a one-hot advantage
    /// gives back each row's log-probability as the sampler computed it step by step with its
    /// cache: rows that ended keep their `<eos>`, also those of exactly `max_len` words (whose
    /// `<eos>` comes from the search's last, `<eos>`-only step), rows cut at `max_len` have none.
    #[test]
    fn the_transformer_policy_loss_scores_the_sampled_tokens() {
        let device = Default::default();
        <B as Backend>::seed(&device, 3);
        let spec: ModelSpec = toml::from_str(
            "[encoder]\narch = \"resnet_tiny\"\n\n[transformer]\nnum_layers = 2\nd_model = 16\n\
             num_heads = 2\nd_ff = 32\ndropout = 0.0\n",
        )
        .expect("model spec");
        let captioner = spec.init::<B>(9, &device);
        let k = 4;
        let scst = ScstSpec {
            samples_per_image: k,
            max_len: 6,
            ..ScstSpec::default()
        };
        let stage = ScstStage::new(scst, &[vec![vec![4, 5, 6]], vec![vec![6, 7, 8, 4]]], None);
        let images = Tensor::<B, 4>::random([2, 3, 64, 64], Distribution::Default, &device);
        let features = captioner.features(images);
        let (mut ended, mut cut, mut full) = (0, 0, 0);
        for step in 0..12 {
            let rollouts = stage.rollouts(
                &captioner.valid(),
                features.clone().inner(),
                &[0, 1],
                7,
                step,
                1,
            );
            let rows = &rollouts.rows;
            let n = rows.len();
            assert_eq!(n, 2 * k);
            let (inputs, targets, t) = teacher_forcing(rows);
            let logits = captioner
                .forward_features(
                    features.clone().repeat_rows(k),
                    Tensor::from_data(TensorData::new(inputs, [n, t]), &device),
                )
                .logits;
            let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, t]), &device);
            let mask = matrix::<B>(sample_mask(rows, Vocab::EOS), n, t, &device);
            for (i, row) in rows.iter().enumerate() {
                if row.last() == Some(&Vocab::EOS) {
                    assert!(row.len() <= 7, "at most max_len words and <eos>: {row:?}");
                    ended += 1;
                    full += usize::from(row.len() == 7);
                } else {
                    assert_eq!(
                        row.len(),
                        6,
                        "a row without <eos> was cut at max_len: {row:?}"
                    );
                    cut += 1;
                }
                let want = rollouts.log_probs[i];
                let mut one_hot = vec![0f32; n];
                one_hot[i] = 1.0;
                let loss = policy_loss(
                    logits.clone(),
                    targets.clone(),
                    mask.clone(),
                    Tensor::from_data(TensorData::new(one_hot, [n]), &device),
                );
                let log_p = -loss.into_scalar_f64() * n as f64;
                assert!(
                    (log_p - want).abs() < 1e-4 * want.abs().max(1.0),
                    "step {step} row {i} {row:?}: teacher-forced {log_p} vs sampled {want}"
                );
            }
        }
        // Rows of exactly max_len words that then ended keep their <eos> (decoding only
        // max_len words could not tell them from cut ones).
        assert!(
            ended > 0 && cut > 0 && full > 0,
            "{ended} ended ({full} of max_len words), {cut} cut"
        );
    }
}
