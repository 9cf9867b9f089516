//! `caplab compare`: its command-line arguments (clap) and the call into
//! [`caplab_runner::compare`], which holds everything else.

use std::path::PathBuf;

use anyhow::Result;
use caplab_runner::compare::CompareRequest;

/// Command-line arguments of `caplab compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Run directories, evaluation directories, report.json files or sweep directories.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// The baseline: a run directory (its group) or a group label. Default: the first input's group.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Group runs by these spec keys (comma-separated) instead of "everything but the seed".
    #[arg(long, value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// Write compare.md, compare.csv, compare.parquet and compare.html into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
}

/// `caplab compare`: prints compare.md, and writes every output with `--out`.
pub fn run(args: CompareArgs) -> Result<()> {
    caplab_runner::compare::run(&CompareRequest {
        inputs: args.inputs,
        baseline: args.baseline,
        group_by: args.group_by,
        out: args.out,
        bootstrap: args.bootstrap,
    })
}
