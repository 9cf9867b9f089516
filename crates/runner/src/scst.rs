//! Self-critical sequence training (Rennie et al., CVPR 2017): the policy-gradient objective that
//! fine-tunes a cross-entropy captioner on a sentence-level reward (CIDEr-D).
//!
//! For each image, `k` captions `w¹…wᵏ` are sampled from the model; each gets a reward `rᵢ`
//! and a baseline `bᵢ`, and the loss over the `N` sampled captions of a batch is
//!
//! ```text
//! L = −(1/N) · Σᵢ (rᵢ − bᵢ) · Σₜ mᵢₜ · log p(wᵢₜ | wᵢ<ₜ, image)
//! ```
//!
//! where `mᵢₜ` keeps the sampled tokens up to and including the first `<eos>` and drops the
//! padding after it. The baseline is the reward of the greedy caption of the same image
//! (`greedy`, Rennie et al.) or the mean reward of the image's other `k − 1` samples
//! (`mean_of_others`, Luo 2020's "new SCST").

use std::sync::atomic::Ordering;

use burn::module::AutodiffModule;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{backend::Backend, FloatDType, Int, Tensor, TensorData};
use caplab_data::vocab::Vocab;
use caplab_metrics::cider::{CiderD, PreparedRefs};
use caplab_models::search::SearchSpec;
use serde::{Deserialize, Serialize};

use crate::batch::CaptionBatch;
use crate::model::TrainModel;
use crate::spec::ScstSpec;
use crate::tensorboard::TensorBoard;

/// What the reward of a sample is compared against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The reward of the image's greedy caption (Rennie et al. 2017).
    Greedy,
    /// The mean reward of the image's other samples (Luo 2020); needs `samples_per_image ≥ 2`.
    MeanOfOthers,
}

/// The baseline of each sample. `rewards` holds `k` samples per image, image-major
/// (`[img0 s0, img0 s1, …, img1 s0, …]`); `greedy` holds one reward per image and is read only
/// by [`Baseline::Greedy`].
pub fn baselines(rewards: &[f64], k: usize, baseline: Baseline, greedy: &[f64]) -> Vec<f64> {
    assert!(
        k >= 1 && rewards.len().is_multiple_of(k),
        "k samples per image"
    );
    match baseline {
        Baseline::Greedy => {
            assert_eq!(
                greedy.len() * k,
                rewards.len(),
                "one greedy reward per image"
            );
            greedy
                .iter()
                .flat_map(|&g| std::iter::repeat_n(g, k))
                .collect()
        }
        Baseline::MeanOfOthers => {
            assert!(k >= 2, "mean_of_others needs two samples per image");
            rewards
                .chunks(k)
                .flat_map(|image| {
                    let total: f64 = image.iter().sum();
                    image.iter().map(move |&r| (total - r) / (k - 1) as f64)
                })
                .collect()
        }
    }
}

/// The mask of sampled token sequences: 1 for each token up to and including the first `eos`,
/// 0 after it. `tokens` is `[N][T]`; the result is row-major `N × T`.
pub fn sample_mask(tokens: &[Vec<u32>], eos: u32) -> Vec<f32> {
    let t = tokens.iter().map(Vec::len).max().unwrap_or(0);
    let mut mask = vec![0f32; tokens.len() * t];
    for (i, seq) in tokens.iter().enumerate() {
        for (j, &w) in seq.iter().enumerate() {
            mask[i * t + j] = 1.0;
            if w == eos {
                break;
            }
        }
    }
    mask
}

/// The SCST loss `−(1/N) Σᵢ Aᵢ Σₜ mᵢₜ log p(wᵢₜ)` from the decoder's logits on the sampled
/// captions (teacher-forced on them), its gradient flowing through the log-probabilities only.
///
/// - `logits`: `[N, T, V]`, the step-`t` distribution that produced token `wᵢₜ`;
/// - `tokens`: `[N, T]`, the sampled tokens;
/// - `mask`: `[N, T]` from [`sample_mask`];
/// - `advantages`: `[N]`, `rᵢ − bᵢ` (constants).
pub fn policy_loss<B: Backend>(
    logits: Tensor<B, 3>,
    tokens: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    advantages: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let [n, t, v] = logits.dims();
    // Half-precision runs take the log-softmax and the sums in f32 (a no-op for f32 backends).
    let logits = logits.cast(FloatDType::F32);
    let mask = mask.cast(FloatDType::F32);
    let advantages = advantages.cast(FloatDType::F32);
    let logp = log_softmax(logits.reshape([n * t, v]), 1)
        .gather(1, tokens.reshape([n * t, 1]))
        .reshape([n, t]);
    let per_sample = (logp * mask).sum_dim(1).reshape([n]);
    (per_sample * advantages).sum().neg().div_scalar(n as f64)
}

/// What the SCST epochs need besides the model: the settings, the reward's CIDEr-D with
/// document frequencies from the training references (computed once), each training image's
/// references prepared once, and where the per-step figures go.
pub struct ScstStage {
    /// `[train.scst]`.
    pub spec: ScstSpec,
    /// CIDEr-D over the training references.
    pub cider: CiderD,
    /// Each training image's references, by index in the train split (CIDEr-D).
    pub refs: Vec<PreparedRefs>,
    /// Each training image's references as token ids (sentence BLEU-4).
    pub ref_tokens: Vec<Vec<Vec<u32>>>,
    /// TensorBoard writer for the per-step scalars.
    pub board: Option<TensorBoard>,
}

impl std::fmt::Debug for ScstStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScstStage")
            .field("spec", &self.spec)
            .field("images", &self.refs.len())
            .finish()
    }
}

impl ScstStage {
    /// Builds the reward from the training captions as token ids (`train[i]` = image `i`'s
    /// references, in the vocabulary's ids, `<eos>` not included).
    pub fn new(spec: ScstSpec, train: &[Vec<Vec<u32>>], board: Option<TensorBoard>) -> ScstStage {
        let with_eos = |refs: &Vec<Vec<u32>>| -> Vec<Vec<u32>> {
            refs.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if spec.include_eos_in_reward {
                        r.push(Vocab::EOS);
                    }
                    r
                })
                .collect()
        };
        let ref_tokens: Vec<Vec<Vec<u32>>> = train.iter().map(with_eos).collect();
        let cider = CiderD::from_references(&ref_tokens);
        let refs = ref_tokens.iter().map(|r| cider.prepare(r)).collect();
        ScstStage {
            spec,
            cider,
            refs,
            ref_tokens,
            board,
        }
    }

    /// The reward of `tokens` (`<eos>` excluded; `ended` when the caption emitted it) for
    /// training image `image`.
    pub fn reward(&self, tokens: &[u32], ended: bool, image: usize) -> f64 {
        let mut cand = tokens.to_vec();
        if ended && self.spec.include_eos_in_reward {
            cand.push(Vocab::EOS);
        }
        let w = self.spec.reward;
        let mut r = 0.0;
        if w.cider > 0.0 {
            r += w.cider * self.cider.score(&cand, &self.refs[image]);
        }
        if w.bleu4 > 0.0 {
            let stats = caplab_metrics::bleu::stats(&cand, &self.ref_tokens[image]);
            r += w.bleu4 * caplab_metrics::bleu::from_stats(&stats)[3];
        }
        r
    }
}

/// Per-step figures of an SCST step (means over the batch's samples).
#[derive(Clone, Copy, Debug, Default)]
pub struct ScstStats {
    /// Mean reward of the samples.
    pub reward: f64,
    /// Mean baseline.
    pub baseline: f64,
    /// Mean advantage (reward − baseline).
    pub advantage: f64,
    /// Mean per-token entropy of the sampling distribution (nats), over the kept tokens.
    pub entropy: f64,
    /// Mean reward of the greedy captions (greedy baseline only; else NaN).
    pub greedy_reward: f64,
    /// Seconds spent sampling and in the teacher-forced forward pass.
    pub model_s: f64,
    /// Seconds spent computing rewards.
    pub reward_s: f64,
}

/// The SCST loss of a batch: samples `k` captions per image and the greedy baseline with the
/// model's inference copy (no autodiff), scores them, then runs the autodiff model teacher-forced
/// on the samples for [`policy_loss`]. Returns the loss, the number of samples and the figures.
pub fn step_loss<B: AutodiffBackend>(
    model: &TrainModel<B>,
    batch: &CaptionBatch<B>,
    stage: &ScstStage,
) -> (Tensor<B, 1>, usize, ScstStats) {
    let spec = &stage.spec;
    let k = spec.samples_per_image;
    let max_len = spec.max_len;
    let device = batch.images.device();
    let t0 = std::time::Instant::now();
    // One encoder pass: the autodiff features feed the policy-gradient pass, their detached
    // values the sampling.
    let train_features = model.train_features(batch);
    let inner = model.captioner.valid();
    let features = train_features.inner();
    let step = model.steps.load(Ordering::Relaxed) as u64;
    let sampling = SearchSpec::Sample {
        max_len,
        temperature: spec.temperature,
        top_k: 0,
        top_p: 1.0,
        seed: model.seed ^ step.wrapping_add(1).wrapping_mul(0x2545_F491_4F6C_DD1D),
    };
    let samples = inner.caption(
        features.clone().repeat_rows(k),
        &sampling,
        Vocab::SOS,
        Vocab::EOS,
        None,
        1,
    );
    let greedy = match spec.baseline {
        Baseline::Greedy => inner.caption(
            features,
            &SearchSpec::Greedy { max_len },
            Vocab::SOS,
            Vocab::EOS,
            None,
            model.decode_threads,
        ),
        Baseline::MeanOfOthers => Vec::new(),
    };
    let mut model_s = t0.elapsed().as_secs_f64();

    let t1 = std::time::Instant::now();
    let ended = |h: &caplab_models::search::Hypothesis| h.tokens.len() < max_len;
    let rewards: Vec<f64> = samples
        .iter()
        .enumerate()
        .map(|(i, h)| stage.reward(&h.tokens, ended(h), batch.indices[i / k]))
        .collect();
    let greedy_rewards: Vec<f64> = greedy
        .iter()
        .enumerate()
        .map(|(i, h)| stage.reward(&h.tokens, ended(h), batch.indices[i]))
        .collect();
    let base = baselines(&rewards, k, spec.baseline, &greedy_rewards);
    let reward_s = t1.elapsed().as_secs_f64();

    let t2 = std::time::Instant::now();
    let rows: Vec<Vec<u32>> = samples
        .iter()
        .map(|h| {
            let mut r = h.tokens.clone();
            if ended(h) {
                r.push(Vocab::EOS);
            }
            r
        })
        .collect();
    let n = rows.len();
    let t = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut inputs = vec![Vocab::PAD as i64; n * t];
    let mut targets = vec![Vocab::PAD as i64; n * t];
    for (i, r) in rows.iter().enumerate() {
        inputs[i * t] = Vocab::SOS as i64;
        for (j, &w) in r.iter().enumerate() {
            targets[i * t + j] = w as i64;
            if j + 1 < t {
                inputs[i * t + j + 1] = w as i64;
            }
        }
    }
    let mask = sample_mask(&rows, Vocab::EOS);
    let kept: f32 = mask.iter().sum();
    let advantages: Vec<f32> = rewards
        .iter()
        .zip(&base)
        .map(|(r, b)| (r - b) as f32)
        .collect();
    let features = train_features.repeat_rows(k);
    let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [n, t]), &device);
    let logits = model.captioner.forward_features(features, inputs).logits;
    let mask_t = matrix::<B>(mask, n, t, &device);
    // Entropy of the sampling distribution at the kept positions (a detached diagnostic).
    let entropy = {
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
        Tensor::from_data(TensorData::new(advantages, [n]), &device),
    );
    model_s += t2.elapsed().as_secs_f64();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let stats = ScstStats {
        reward: mean(&rewards),
        baseline: mean(&base),
        advantage: mean(&rewards) - mean(&base),
        entropy,
        greedy_reward: if greedy_rewards.is_empty() {
            f64::NAN
        } else {
            mean(&greedy_rewards)
        },
        model_s,
        reward_s,
    };
    if let Some(board) = &stage.board {
        let s = step as usize + 1;
        board.scalar("scst/reward", stats.reward, s);
        board.scalar("scst/baseline", stats.baseline, s);
        board.scalar("scst/advantage", stats.advantage, s);
        board.scalar("scst/entropy", stats.entropy, s);
        board.scalar("scst/reward_seconds", stats.reward_s, s);
        board.scalar("scst/model_seconds", stats.model_s, s);
    }
    (loss, n, stats)
}

/// `[N, T]` float tensor from row-major values.
pub fn matrix<B: Backend>(
    values: Vec<f32>,
    n: usize,
    t: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values, [n, t]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;

    type B = Autodiff<NdArray>;

    #[test]
    fn baselines_by_hand() {
        let rewards = [1.0, 2.0, 6.0, 0.5, 0.5, 2.0];
        assert_eq!(
            baselines(&rewards, 3, Baseline::MeanOfOthers, &[]),
            vec![4.0, 3.5, 1.5, 1.25, 1.25, 0.5]
        );
        assert_eq!(
            baselines(&rewards, 3, Baseline::Greedy, &[0.7, 0.2]),
            vec![0.7, 0.7, 0.7, 0.2, 0.2, 0.2]
        );
    }

    #[test]
    fn mask_keeps_tokens_through_the_first_eos() {
        let eos = 2;
        let mask = sample_mask(&[vec![5, 6, 2, 7], vec![2, 9, 9, 9], vec![4, 4, 4, 4]], eos);
        assert_eq!(mask, vec![1., 1., 1., 0., 1., 0., 0., 0., 1., 1., 1., 1.]);
    }

    /// dL/dz_{i,t,v} = −(Aᵢ/N) · mᵢₜ · (1[v = wᵢₜ] − softmax(zᵢₜ)ᵥ), for both baselines.
    #[test]
    fn the_loss_gradient_equals_the_hand_computation_for_both_baselines() {
        let device = Default::default();
        let (images, k, t, v) = (2usize, 3usize, 4usize, 5usize);
        let n = images * k;
        let eos = 2u32;
        let tokens: Vec<Vec<u32>> = vec![
            vec![3, 1, 2, 0],
            vec![4, 2, 0, 0],
            vec![1, 1, 1, 1],
            vec![2, 0, 0, 0],
            vec![0, 3, 4, 2],
            vec![3, 3, 2, 0],
        ];
        let rewards = [0.9, 0.1, 0.4, 1.5, 0.0, 0.3];
        let greedy = [0.5, 0.6];
        let mask = sample_mask(&tokens, eos);
        for baseline in [Baseline::Greedy, Baseline::MeanOfOthers] {
            let b = baselines(&rewards, k, baseline, &greedy);
            let adv: Vec<f32> = rewards
                .iter()
                .zip(&b)
                .map(|(r, b)| (r - b) as f32)
                .collect();
            let logits = Tensor::<B, 3>::random([n, t, v], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let flat: Vec<i64> = tokens.iter().flatten().map(|&w| w as i64).collect();
            let tok = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [n, t]), &device);
            let loss = policy_loss(
                logits.clone(),
                tok,
                matrix::<B>(mask.clone(), n, t, &device),
                Tensor::from_data(TensorData::new(adv.clone(), [n]), &device),
            );
            let grads = loss.backward();
            let got: Vec<f32> = logits.grad(&grads).unwrap().into_data().to_vec().unwrap();
            let z: Vec<f32> = logits.into_data().to_vec().unwrap();
            let mut max_err = 0f32;
            for i in 0..n {
                for s in 0..t {
                    let row = &z[(i * t + s) * v..(i * t + s + 1) * v];
                    let m = row.iter().cloned().fold(f32::MIN, f32::max);
                    let sum: f32 = row.iter().map(|x| (x - m).exp()).sum();
                    for w in 0..v {
                        let p = (row[w] - m).exp() / sum;
                        let hit = if w as u32 == tokens[i][s] { 1.0 } else { 0.0 };
                        let want = -(adv[i] / n as f32) * mask[i * t + s] * (hit - p);
                        let err = (got[(i * t + s) * v + w] - want).abs();
                        max_err = max_err.max(err);
                    }
                }
            }
            assert!(max_err < 1e-6, "{baseline:?}: max |error| {max_err}");
            // The masked steps (after <eos>) get no gradient at all.
            assert_eq!(got[(3 * t + 1) * v..(3 * t + 2) * v], [0.0; 5]);
        }
    }
}
