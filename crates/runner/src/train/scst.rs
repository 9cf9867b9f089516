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

use burn::tensor::backend::Backend;
use caplab_data::vocab::Vocab;
use caplab_metrics::cider::{CiderD, PreparedRefs};
use caplab_models::search::SearchSpec;
use caplab_models::{Captioner, Features};

use super::tally::ScstStats;
use crate::spec::{ScstBaseline, ScstSpec};
use crate::tensorboard::TensorBoard;

/// The baseline of each sample. `rewards` holds `k` samples per image, image-major
/// (`[img0 s0, img0 s1, …, img1 s0, …]`); `greedy` holds one reward per image and is read only
/// by [`ScstBaseline::Greedy`].
pub fn baselines(rewards: &[f64], k: usize, baseline: ScstBaseline, greedy: &[f64]) -> Vec<f64> {
    assert!(
        k >= 1 && rewards.len().is_multiple_of(k),
        "k samples per image"
    );
    match baseline {
        ScstBaseline::Greedy => {
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
        ScstBaseline::MeanOfOthers => {
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

/// The teacher-forced batch of the policy pass over sampled captions `rows` (`<eos>` appended
/// where a caption ended): `inputs` is `<sos>` followed by each row's tokens but its last,
/// `targets` the row's tokens, both `<pad>`-filled to the longest row `t`; row-major `N × t`,
/// with `t`.
pub fn teacher_forcing(rows: &[Vec<u32>]) -> (Vec<i64>, Vec<i64>, usize) {
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
    (inputs, targets, t)
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

/// The captions an SCST step trains on: `k` samples per image with their advantages over the
/// baseline, and the step's reward figures.
pub struct Rollouts {
    /// The sampled captions, `k` per image, image-major; `<eos>` appended where a caption ended.
    pub rows: Vec<Vec<u32>>,
    /// `rᵢ − bᵢ` of each row.
    pub advantages: Vec<f32>,
    /// The sampler's log-probability of each row (`<eos>` included where emitted): what the
    /// teacher-forced policy pass must reproduce without dropout.
    pub log_probs: Vec<f64>,
    /// Rewards and baseline so far; `entropy` and the teacher-forced pass's seconds are added by
    /// the step.
    pub stats: ScstStats,
}

impl ScstStage {
    /// Samples `k` captions per image from `captioner` (the model's inference copy) over
    /// `features` (one row per image of the batch, `images` their indices in the train split),
    /// decodes the greedy baseline when it is used, and scores them all. The sampling stream is
    /// seeded by `(seed, step)`, so a resumed run draws what the uninterrupted run drew.
    pub fn rollouts<B: Backend>(
        &self,
        captioner: &Captioner<B>,
        features: Features<B>,
        images: &[usize],
        seed: u64,
        step: u64,
        decode_threads: usize,
    ) -> Rollouts {
        let spec = &self.spec;
        let k = spec.samples_per_image;
        let max_len = spec.max_len;
        let t0 = std::time::Instant::now();
        let sampling = SearchSpec::Sample {
            max_len,
            temperature: spec.temperature,
            top_k: 0,
            top_p: 1.0,
            seed: seed ^ step.wrapping_add(1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        };
        let samples = captioner.caption(
            features.clone().repeat_rows(k),
            &sampling,
            Vocab::SOS,
            Vocab::EOS,
            None,
            1,
        );
        let greedy = match spec.baseline {
            ScstBaseline::Greedy => captioner.caption(
                features,
                &SearchSpec::Greedy { max_len },
                Vocab::SOS,
                Vocab::EOS,
                None,
                decode_threads,
            ),
            ScstBaseline::MeanOfOthers => Vec::new(),
        };
        let model_s = t0.elapsed().as_secs_f64();

        let t1 = std::time::Instant::now();
        let rewards: Vec<f64> = samples
            .iter()
            .enumerate()
            .map(|(i, h)| self.reward(&h.tokens, h.ended, images[i / k]))
            .collect();
        let greedy_rewards: Vec<f64> = greedy
            .iter()
            .enumerate()
            .map(|(i, h)| self.reward(&h.tokens, h.ended, images[i]))
            .collect();
        let base = baselines(&rewards, k, spec.baseline, &greedy_rewards);
        let reward_s = t1.elapsed().as_secs_f64();

        let rows = samples
            .iter()
            .map(|h| {
                let mut r = h.tokens.clone();
                if h.ended {
                    r.push(Vocab::EOS);
                }
                r
            })
            .collect();
        let advantages = rewards
            .iter()
            .zip(&base)
            .map(|(r, b)| (r - b) as f32)
            .collect();
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let stats = ScstStats {
            reward: mean(&rewards),
            baseline: mean(&base),
            advantage: mean(&rewards) - mean(&base),
            entropy: 0.0,
            greedy_reward: if greedy_rewards.is_empty() {
                f64::NAN
            } else {
                mean(&greedy_rewards)
            },
            model_s,
            reward_s,
        };
        Rollouts {
            rows,
            advantages,
            log_probs: samples.iter().map(|h| h.log_prob).collect(),
            stats,
        }
    }

    /// Writes a step's figures to TensorBoard (`scst/*`), numbered by the 1-based `step`.
    pub fn log(&self, stats: &ScstStats, step: usize) {
        if let Some(board) = &self.board {
            board.scalar("scst/reward", stats.reward, step);
            board.scalar("scst/baseline", stats.baseline, step);
            board.scalar("scst/advantage", stats.advantage, step);
            board.scalar("scst/entropy", stats.entropy, step);
            board.scalar("scst/reward_seconds", stats.reward_s, step);
            board.scalar("scst/model_seconds", stats.model_s, step);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::loss::{matrix, policy_loss};
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    type B = Autodiff<NdArray>;

    #[test]
    fn baselines_by_hand() {
        let rewards = [1.0, 2.0, 6.0, 0.5, 0.5, 2.0];
        assert_eq!(
            baselines(&rewards, 3, ScstBaseline::MeanOfOthers, &[]),
            vec![4.0, 3.5, 1.5, 1.25, 1.25, 0.5]
        );
        assert_eq!(
            baselines(&rewards, 3, ScstBaseline::Greedy, &[0.7, 0.2]),
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
        for baseline in [ScstBaseline::Greedy, ScstBaseline::MeanOfOthers] {
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
