//! The running sums of an epoch: each training and validation step adds its loss (and the
//! validation step its greedy captions, an SCST step its reward figures); the epoch's end takes
//! them once to write the epoch's record.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::history::lock;

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

/// Sums over the current epoch, filled by the training and validation steps.
#[derive(Debug, Default)]
pub struct Tally {
    state: Mutex<TallyState>,
}

#[derive(Debug, Default)]
pub struct TallyState {
    pub train_loss: f64,
    pub train_tokens: usize,
    pub valid_loss: f64,
    pub valid_tokens: usize,
    pub captions: BTreeMap<usize, Vec<u32>>,
    pub scst_steps: usize,
    pub scst_reward: f64,
    pub scst_greedy: f64,
    pub scst_entropy: f64,
    pub scst_reward_s: f64,
    pub scst_model_s: f64,
}

impl Tally {
    /// Adds a training batch: its mean token loss over `tokens` target tokens.
    pub fn add_train(&self, mean: f64, tokens: usize) {
        let mut s = lock(&self.state);
        s.train_loss += mean * tokens as f64;
        s.train_tokens += tokens;
    }

    /// Adds a validation batch: its teacher-forced mean loss and its greedy captions.
    pub fn add_valid(&self, mean: f64, tokens: usize, indices: &[usize], captions: Vec<Vec<u32>>) {
        let mut s = lock(&self.state);
        s.valid_loss += mean * tokens as f64;
        s.valid_tokens += tokens;
        s.captions.extend(indices.iter().copied().zip(captions));
    }

    /// Adds an SCST step's figures.
    pub fn add_scst(&self, stats: &ScstStats) {
        let mut s = lock(&self.state);
        s.scst_steps += 1;
        s.scst_reward += stats.reward;
        s.scst_greedy += stats.greedy_reward;
        s.scst_entropy += stats.entropy;
        s.scst_reward_s += stats.reward_s;
        s.scst_model_s += stats.model_s;
    }

    /// The sums so far, reset to zero for the next epoch.
    pub fn take(&self) -> TallyState {
        std::mem::take(&mut *lock(&self.state))
    }
}
