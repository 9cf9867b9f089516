//! Learning-rate schedules of the `[train.lr_schedule]` section, stepped once per batch.

use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::LearningRate;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// How the learning rate moves during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs (Show and Tell's step decay).
    Step {
        /// Epochs between decays.
        every_epochs: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Linear warm-up from 0, then cosine decay to `min_lr` at the last step.
    Cosine {
        /// Warm-up length in epochs (may be fractional).
        #[serde(default)]
        warmup_epochs: f64,
        /// Final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
}

/// A schedule bound to a run: base rate and the number of batches per epoch and in total.
#[derive(Clone, Debug)]
pub struct Scheduler {
    schedule: LrSchedule,
    base: f64,
    steps_per_epoch: usize,
    total_steps: usize,
    step: usize,
}

impl Scheduler {
    /// A scheduler for `epochs` epochs of `steps_per_epoch` batches.
    pub fn new(schedule: LrSchedule, base: f64, steps_per_epoch: usize, epochs: usize) -> Self {
        let steps_per_epoch = steps_per_epoch.max(1);
        Self {
            schedule,
            base,
            steps_per_epoch,
            total_steps: steps_per_epoch * epochs.max(1),
            step: 0,
        }
    }

    /// The rate of 0-based batch `step`.
    pub fn rate_at(&self, step: usize) -> f64 {
        match &self.schedule {
            LrSchedule::Constant => self.base,
            LrSchedule::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = step / self.steps_per_epoch;
                let decays = epoch / (*every_epochs).max(1);
                self.base * gamma.powi(decays as i32)
            }
            LrSchedule::Cosine {
                warmup_epochs,
                min_lr,
            } => {
                let warmup = (warmup_epochs * self.steps_per_epoch as f64).round() as usize;
                if step < warmup {
                    return self.base * (step + 1) as f64 / warmup as f64;
                }
                let span = (self.total_steps.saturating_sub(warmup)).max(1) as f64;
                let t = ((step - warmup) as f64 / span).min(1.0);
                min_lr + 0.5 * (self.base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

impl LrScheduler for Scheduler {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let lr = self.rate_at(self.step);
        self.step += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: usize) -> Self {
        self.step = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_halves_every_two_epochs() {
        let s = Scheduler::new(
            LrSchedule::Step {
                every_epochs: 2,
                gamma: 0.5,
            },
            1.0,
            10,
            6,
        );
        assert_eq!(s.rate_at(0), 1.0);
        assert_eq!(s.rate_at(19), 1.0);
        assert_eq!(s.rate_at(20), 0.5);
        assert_eq!(s.rate_at(45), 0.25);
    }

    #[test]
    fn cosine_warms_up_then_decays_to_min() {
        let s = Scheduler::new(
            LrSchedule::Cosine {
                warmup_epochs: 1.0,
                min_lr: 0.1,
            },
            1.0,
            10,
            3,
        );
        assert!((s.rate_at(0) - 0.1).abs() < 1e-12);
        assert!((s.rate_at(9) - 1.0).abs() < 1e-12);
        assert!((s.rate_at(10) - 1.0).abs() < 1e-12);
        assert!(s.rate_at(20) < s.rate_at(15));
        assert!((s.rate_at(30) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn the_record_restores_the_position() {
        let mut s = Scheduler::new(
            LrSchedule::Step {
                every_epochs: 1,
                gamma: 0.1,
            },
            1.0,
            2,
            4,
        );
        s.step();
        s.step();
        s.step();
        let rec = <Scheduler as LrScheduler>::to_record::<burn::backend::NdArray>(&s);
        let t = Scheduler::new(
            LrSchedule::Step {
                every_epochs: 1,
                gamma: 0.1,
            },
            1.0,
            2,
            4,
        );
        let mut t = <Scheduler as LrScheduler>::load_record::<burn::backend::NdArray>(t, rec);
        assert!((t.step() - 0.1).abs() < 1e-12);
    }
}
