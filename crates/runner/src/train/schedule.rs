//! Learning-rate schedules of the `[train.lr_schedule]` section, stepped once per batch.

use std::sync::{Arc, Mutex};

use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::LearningRate;
use burn::tensor::backend::Backend;

use crate::history::{lock, History, Selection};
use crate::spec::LrSchedule;

/// What a plateau schedule watches: the run history and the selection metric.
#[derive(Clone, Debug)]
pub struct Watch {
    /// The run history (epochs appended as they end).
    pub history: Arc<Mutex<History>>,
    /// The selection metric and its direction.
    pub selection: Selection,
}

/// A schedule bound to a run: base rate and the number of batches per epoch and in total.
#[derive(Clone, Debug)]
pub struct Scheduler {
    schedule: LrSchedule,
    base: f64,
    steps_per_epoch: usize,
    total_steps: usize,
    step: usize,
    watch: Option<Watch>,
    /// Batches of the schedule's own epochs (0 for none: SCST from `init_from` with
    /// `train.epochs = 0`); `total_steps` is at least one epoch, for the schedules' arithmetic.
    own_steps: usize,
    /// From this step on, this constant rate (the SCST epochs' `train.scst.lr`).
    then: Option<(usize, f64)>,
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
            own_steps: steps_per_epoch * epochs,
            step: 0,
            watch: None,
            then: None,
        }
    }

    /// After the schedule's own epochs, the constant rate `lr` (the SCST epochs): from the
    /// first step when there are none.
    pub fn then_constant(self, lr: f64) -> Self {
        Self {
            then: Some((self.own_steps, lr)),
            ..self
        }
    }

    /// Lets a plateau schedule read the validation values logged so far.
    pub fn watching(self, watch: Watch) -> Self {
        Self {
            watch: Some(watch),
            ..self
        }
    }

    /// Number of decays a plateau schedule has earned from the validation values of the epochs
    /// before the one `step` belongs to. Each epoch's values are in the history before the next
    /// epoch's first step, in a resumed run as in an uninterrupted one.
    fn plateau_decays(&self, patience: usize, step: usize) -> i32 {
        let Some(w) = &self.watch else { return 0 };
        let previous = step / self.steps_per_epoch;
        let values = lock(&w.history).valid_values(&w.selection.metric, previous);
        plateau_decays(values.into_iter(), patience, w.selection.lower_is_better)
    }

    /// The rate of 0-based batch `step`.
    pub fn rate_at(&self, step: usize) -> f64 {
        if let Some((from, lr)) = self.then {
            if step >= from {
                return lr;
            }
        }
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
            LrSchedule::Plateau {
                factor,
                patience,
                min_lr,
            } => (self.base * factor.powi(self.plateau_decays(*patience, step))).max(*min_lr),
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
            LrSchedule::Noam { warmup_steps } => {
                let s = (step + 1) as f64;
                let w = (*warmup_steps).max(1) as f64;
                self.base * (s / w).min((w / s).sqrt())
            }
        }
    }
}

/// Decays earned by a sequence of epoch values: one each time `patience` epochs pass without
/// improving on the best so far (the count of bad epochs then restarts, as PyTorch does).
pub fn plateau_decays(values: impl Iterator<Item = f64>, patience: usize, lower: bool) -> i32 {
    let mut best: Option<f64> = None;
    let mut bad = 0;
    let mut decays = 0;
    for v in values {
        let better = best.is_none_or(|b| crate::history::improves(v, b, lower));
        if better {
            best = Some(v);
            bad = 0;
        } else {
            bad += 1;
            if bad >= patience.max(1) {
                decays += 1;
                bad = 0;
            }
        }
    }
    decays
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
    fn noam_warms_up_linearly_then_decays_as_the_inverse_square_root() {
        let s = Scheduler::new(LrSchedule::Noam { warmup_steps: 4 }, 2.0, 10, 3);
        // Steps 1..4 (0-based 0..3): 2·s/4.
        assert!((s.rate_at(0) - 0.5).abs() < 1e-12);
        assert!((s.rate_at(1) - 1.0).abs() < 1e-12);
        assert!(
            (s.rate_at(3) - 2.0).abs() < 1e-12,
            "peak = train.lr at the warm-up's end"
        );
        // Then 2·√(4/s): step 16 is 1.0, step 64 is 0.5.
        assert!((s.rate_at(15) - 1.0).abs() < 1e-12);
        assert!((s.rate_at(63) - 0.5).abs() < 1e-12);
        // The paper's d^-0.5 · min(s^-0.5, s·w^-1.5) with d = 512, w = 4000 is train.lr =
        // (512 · 4000)^-0.5.
        let (d, w) = (512.0f64, 4000usize);
        let paper = Scheduler::new(
            LrSchedule::Noam { warmup_steps: w },
            (d * w as f64).powf(-0.5),
            100,
            100,
        );
        for step in [0usize, 999, 3999, 4000, 9999] {
            let s = (step + 1) as f64;
            let want = d.powf(-0.5) * s.powf(-0.5).min(s * (w as f64).powf(-1.5));
            assert!(
                (paper.rate_at(step) - want).abs() < 1e-12 * want.max(1e-9),
                "{step}"
            );
        }
    }

    /// SCST's constant rate starts right after the cross-entropy epochs, and at the first step
    /// when there are none (`init_from` with `train.epochs = 0`), not after one epoch of the
    /// cross-entropy schedule.
    #[test]
    fn the_constant_rate_follows_the_schedules_own_epochs_even_when_there_are_none() {
        let noam = LrSchedule::Noam { warmup_steps: 150 };
        let s = Scheduler::new(noam.clone(), 2e-3, 50, 2).then_constant(1e-4);
        assert!((s.rate_at(49) - 2e-3 * 50.0 / 150.0).abs() < 1e-12);
        assert!((s.rate_at(99) - 2e-3 * 100.0 / 150.0).abs() < 1e-12);
        assert_eq!(s.rate_at(100), 1e-4);
        for epochs_zero in [
            Scheduler::new(noam, 2e-3, 50, 0),
            Scheduler::new(LrSchedule::Constant, 2e-3, 50, 0),
        ] {
            let s = epochs_zero.then_constant(1e-4);
            for step in [0, 1, 49, 50, 120] {
                assert_eq!(s.rate_at(step), 1e-4, "step {step}");
            }
        }
    }

    #[test]
    fn plateau_decays_after_patience_epochs_without_improvement() {
        let cider = [0.5, 0.6, 0.55, 0.58, 0.61, 0.6, 0.6, 0.59];
        // patience 2: epochs 3-4 do not beat 0.6 (decay 1), 5 improves, 6-7 do not (decay 2).
        assert_eq!(plateau_decays(cider.into_iter(), 2, false), 2);
        let loss = [3.0, 2.0, 2.5, 1.0];
        assert_eq!(plateau_decays(loss.into_iter(), 1, true), 1);

        let tmp = tempfile::tempdir().expect("tempdir");
        let history = Arc::new(Mutex::new(History::new(tmp.path())));
        let s = Scheduler::new(
            LrSchedule::Plateau {
                factor: 0.5,
                patience: 1,
                min_lr: 0.2,
            },
            1.0,
            10,
            5,
        )
        .watching(Watch {
            history: history.clone(),
            selection: Selection {
                metric: "CIDEr".into(),
                lower_is_better: false,
            },
        });
        assert_eq!(s.rate_at(0), 1.0);
        for (epoch, value) in [(1, 0.5), (2, 0.4), (3, 0.3), (4, 0.2)] {
            history
                .lock()
                .expect("lock")
                .append(crate::history::EpochRecord {
                    epoch,
                    phase: "xe".into(),
                    step: epoch * 10,
                    lr: 1.0,
                    train: Default::default(),
                    valid: [("CIDEr".to_string(), value)].into(),
                    wall_s: 0.0,
                    cpu_s: None,
                })
                .expect("append");
        }
        assert_eq!(s.rate_at(19), 1.0, "epoch 2 sees only epoch 1");
        assert_eq!(
            s.rate_at(20),
            0.5,
            "epoch 3 sees one epoch without improvement"
        );
        assert_eq!(s.rate_at(40), 0.2, "three decays, floored at min_lr");
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
