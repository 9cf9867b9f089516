//! Progress display: an indicatif bar per epoch phase, fed by burn-train's renderer hooks.

use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::LearnerSummary;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A new bar, hidden when `quiet`.
pub fn bar(len: u64, prefix: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(prefix.to_string());
    pb
}

/// Renders training progress as indicatif bars (nothing when quiet).
pub struct BarRenderer {
    quiet: bool,
    bar: Option<(String, ProgressBar)>,
    last_train: String,
    last_valid: String,
}

impl BarRenderer {
    /// A renderer; `quiet` hides every bar.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: None,
            last_train: String::new(),
            last_valid: String::new(),
        }
    }

    fn show(&mut self, phase: &str, item: &TrainingProgress, msg: String) {
        let epoch = item.global_progress.items_processed;
        let epochs = item.global_progress.items_total;
        let label = format!("{phase} {epoch}/{epochs}");
        let (done, total) = match &item.progress {
            Some(p) => (p.items_processed as u64, p.items_total as u64),
            None => (0, 0),
        };
        let needs_new = !matches!(&self.bar, Some((l, _)) if *l == label);
        if needs_new {
            if let Some((_, old)) = self.bar.take() {
                old.finish();
            }
            self.bar = Some((label.clone(), bar(total, &label, self.quiet)));
        }
        if let Some((_, pb)) = &self.bar {
            pb.set_length(total);
            pb.set_position(done);
            pb.set_message(msg);
        }
    }
}

fn describe(state: &MetricState) -> String {
    match state {
        MetricState::Generic(e) | MetricState::Numeric(e, _) => {
            e.serialized_entry.formatted.clone()
        }
    }
}

impl MetricsRendererTraining for BarRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.last_train = describe(&state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.last_valid = describe(&state);
    }

    fn render_train(&mut self, item: TrainingProgress, _p: Vec<ProgressType>) {
        let msg = self.last_train.clone();
        self.show("train", &item, msg);
    }

    fn render_valid(&mut self, item: TrainingProgress, _p: Vec<ProgressType>) {
        let msg = self.last_valid.clone();
        self.show("valid", &item, msg);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        if let Some((_, pb)) = self.bar.take() {
            pb.finish();
        }
        Ok(())
    }
}

impl MetricsRendererEvaluation for BarRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn render_test(&mut self, _item: EvaluationProgress, _p: Vec<ProgressType>) {}

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRenderer for BarRenderer {
    fn manual_close(&mut self) {
        if let Some((_, pb)) = self.bar.take() {
            pb.finish();
        }
    }

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
