//! `caplab data check SPEC`: reads the spec's dataset as a run does, lists every problem and
//! prints its statistics (sizes, caption lengths, captions per image, vocabulary, OOV).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use caplab_data::check::{DatasetStats, Problem, Severity};
use caplab_data::load::check_dataset;

use crate::spec;

/// What a check found: every problem, and the statistics of what could be read.
#[derive(Debug)]
pub struct CheckReport {
    /// Every problem, errors and warnings, in the order found.
    pub problems: Vec<Problem>,
    /// Statistics of the images that could be read; `None` when none could.
    pub stats: Option<DatasetStats>,
    /// Seconds the check took (reading, image checks, statistics).
    pub seconds: f64,
}

impl CheckReport {
    /// Number of errors (warnings do not count).
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// The text `caplab data check` prints: the problems, one a line, then the table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
            let _ = writeln!(out, "{p}");
        }
        if !self.problems.is_empty() {
            out.push('\n');
        }
        if let Some(stats) = &self.stats {
            let _ = write!(out, "{stats}");
        }
        let _ = writeln!(
            out,
            "{} error(s), {} warning(s); checked in {:.2} s",
            self.errors(),
            self.problems.len() - self.errors(),
            self.seconds
        );
        out
    }
}

/// Checks the dataset of the spec at `spec_path` (with `--set` overrides): the spec's `data`
/// section is read exactly as `caplab run` reads it, the vocabulary is the one its
/// `preprocess.vocab` settings build.
pub fn check(spec_path: &Path, overrides: &[String]) -> Result<CheckReport> {
    let spec = spec::load(spec_path, overrides)?;
    let start = Instant::now();
    let (dataset, mut problems) = check_dataset(&spec.data);
    // Images over `preprocess.max_image_pixels`, from their headers: a run refuses them.
    if let Some(ds) = &dataset {
        let paths: Vec<&Path> = ds.images.iter().map(|r| r.path.as_path()).collect();
        for (_, error) in caplab_data::image::oversized(&paths, spec.preprocess.max_image_pixels) {
            problems.push(Problem {
                severity: Severity::Error,
                error,
            });
        }
    }
    let stats = dataset
        .as_ref()
        .map(|ds| {
            DatasetStats::compute(ds, &spec.preprocess.tokenizer, &spec.preprocess.vocab)
                .context("preprocess.tokenizer")
        })
        .transpose()?;
    Ok(CheckReport {
        problems,
        stats,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `caplab data check`: prints the report; an error (non-zero exit) when the dataset has any.
pub fn run(spec_path: &Path, overrides: &[String]) -> Result<()> {
    let report = check(spec_path, overrides)?;
    print!("{}", report.render());
    let errors = report.errors();
    if errors > 0 {
        bail!(
            "the dataset of {} has {errors} error(s), listed above",
            spec_path.display()
        );
    }
    Ok(())
}
