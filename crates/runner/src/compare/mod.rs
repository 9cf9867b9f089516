//! `caplab compare`: experiments, not single runs.
//!
//! `caplab compare RUN|EVAL|SWEEP_DIR... [--baseline DIR] [--group-by KEYS] [--out DIR]`
//!
//! # Inputs
//!
//! Each input is a run directory or an evaluation directory (`RUN/evals/<id>/`), both holding
//! `report.json`; a `report.json` file; a sweep directory, whose `manifest.json` lists its
//! trials (trials without a `report.json` — running, failed, pending — are skipped with a
//! warning); or any other directory whose immediate subdirectories hold `report.json`
//! ([`inputs`]).
//!
//! # The table
//!
//! One polars `DataFrame` (eager) has a row per run: its label, group and directory, the spec
//! keys that differ between the runs (flattened as `model.decoder.cell`), its seed
//! (`experiment.seed`), every test metric of the model and its wall time. Runs that differ
//! only by seed form a group (or, with `--group-by`, runs with the same values of the given
//! keys); each group gets the mean ± sample standard deviation of every column and a Student-t
//! 95% confidence interval over its seeds ([`significance::summarize`]; [`table`]).
//!
//! # Significance
//!
//! Every group is compared with the baseline group (`--baseline`, default the first input's)
//! by a paired bootstrap over test images ([`significance::paired_difference`]): the per-image
//! sufficient statistics of every metric are recomputed from the run's `captions.json` and
//! `refs.json` with caplab-metrics, so corpus metrics (BLEU's n-gram and length counts,
//! METEOR's segment statistics) are recomputed on each resample; CIDEr-D keeps the document
//! frequencies of the full test set (see [`significance`] for why). Runs are paired across
//! groups by seed when the groups share seeds. The resampling seed is fixed: the output is
//! reproducible.
//!
//! # Outputs
//!
//! `compare.md` ([`output`]) is printed; with `--out DIR` it is also written there with
//! `compare.csv` and `compare.parquet` (the run table) and `compare.html` ([`page`]: tables,
//! spec diff, validation curves as inline SVG, a caption gallery), each atomically.
//!
//! Dependencies point one way: this module uses every child; `page` uses `output`, `table`
//! and `inputs`; `output` uses `table` and `significance`; `table` uses `significance` and
//! `inputs`; `significance` uses `inputs`; no child uses this module.

pub mod inputs;
pub mod output;
pub mod page;
pub mod significance;
pub mod table;

#[cfg(test)]
mod fixtures;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::fsutil::write_atomic;

pub use inputs::{load_runs, RunData};
pub use output::fmt_difference;
pub use significance::{BootstrapSettings, Significance, ALPHA};
pub use table::{Comparison, Group};

/// What `caplab compare` is asked to do: the command line's arguments, without clap.
#[derive(Clone, Debug)]
pub struct CompareRequest {
    /// Run directories, evaluation directories, report.json files or sweep directories.
    pub inputs: Vec<PathBuf>,
    /// The baseline: a run directory (its group) or a group label. Default: the first input's
    /// group.
    pub baseline: Option<String>,
    /// Group runs by these spec keys instead of "everything but the seed".
    pub group_by: Vec<String>,
    /// Write compare.md, compare.csv, compare.parquet and compare.html into this directory.
    pub out: Option<PathBuf>,
    /// Bootstrap resamples.
    pub bootstrap: usize,
}

/// Options of [`compare`].
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// See [`CompareRequest::baseline`].
    pub baseline: Option<String>,
    /// See [`CompareRequest::group_by`].
    pub group_by: Vec<String>,
    /// Bootstrap settings.
    pub bootstrap: BootstrapSettings,
}

/// `caplab compare`: prints compare.md, and writes every output with `out`.
pub fn run(request: &CompareRequest) -> Result<()> {
    let opts = CompareOptions {
        baseline: request.baseline.clone(),
        group_by: request.group_by.clone(),
        bootstrap: BootstrapSettings {
            samples: request.bootstrap,
            ..Default::default()
        },
    };
    let c = compare(&request.inputs, &opts)?;
    if let Some(out) = &request.out {
        c.write(out)?;
    }
    print!("{}", c.markdown);
    Ok(())
}

/// Compares the runs of `inputs` (see the module documentation).
pub fn compare(inputs: &[PathBuf], opts: &CompareOptions) -> Result<Comparison> {
    let mut warnings = Vec::new();
    let runs = load_runs(inputs, &mut warnings)?;
    if runs.is_empty() {
        bail!("no runs to compare");
    }
    let mut c = table::tabulate(
        runs,
        &opts.group_by,
        opts.baseline.as_deref(),
        &opts.bootstrap,
        warnings,
    )?;

    // Per-image statistics of every run, once.
    let eval_stats = significance::per_image_stats(&c.runs, &mut c.warnings);
    let evidence = significance::Evidence {
        runs: &c.runs,
        stats: &eval_stats,
        metrics: &c.metrics,
        settings: &c.bootstrap,
    };
    let baseline = &c.groups[c.baseline];
    c.significance = c
        .groups
        .iter()
        .enumerate()
        .filter(|(g, _)| *g != c.baseline)
        .map(|(g, group)| significance::significance_of(&evidence, &baseline.runs, g, &group.runs))
        .collect();
    for w in &c.warnings {
        tracing::warn!("{w}");
    }
    c.markdown = c.to_markdown();
    Ok(c)
}

impl Comparison {
    /// Writes compare.md, compare.csv, compare.parquet and compare.html into `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        write_atomic(&out.join("compare.md"), self.markdown.as_bytes())?;
        write_atomic(&out.join("compare.csv"), &self.to_csv()?)?;
        write_atomic(&out.join("compare.parquet"), &self.to_parquet()?)?;
        write_atomic(&out.join("compare.html"), page::page(self).as_bytes())?;
        Ok(())
    }
}
