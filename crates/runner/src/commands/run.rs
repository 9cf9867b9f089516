//! `caplab run` and `caplab resume`: the arguments of [`caplab_runner::run`].

use std::path::{Path, PathBuf};

use anyhow::Result;
use caplab_runner::run::{self, RunOptions};
use caplab_runner::{spec, sweep};
use clap::Args;

/// Arguments of `caplab run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment spec (TOML).
    spec: PathBuf,
    /// Override a spec key, e.g. `--set train.epochs=2` (value parsed as TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run once per seed (a sweep over seeds), e.g. `--seeds 1,2,3`; same as `experiment.seeds`.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Print the resolved spec and exit.
    #[arg(long)]
    dry_run: bool,
}

/// The options of a run started from the spec at `spec_path`: its git commit is the one of
/// the spec's directory.
pub fn options(spec_path: &Path, quiet: bool) -> RunOptions {
    RunOptions {
        quiet,
        source_dir: spec_path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

/// Runs `caplab run`: one run, or a local sweep when the spec has seeds or a `[sweep]`.
pub fn run(args: RunArgs, quiet: bool) -> Result<()> {
    let mut spec = spec::load(&args.spec, &args.set)?;
    if !args.seeds.is_empty() {
        spec.experiment.seeds = args.seeds;
    }
    if args.dry_run {
        print!("{}", spec.to_toml()?);
        return Ok(());
    }
    if spec.sweep.is_some() || !spec.experiment.seeds.is_empty() {
        // Several trials: a local sweep, one at a time.
        let plan = sweep::Sweep::plan(&spec)?;
        return super::sweep::run_local(plan, &args.spec, 1, quiet);
    }
    let dir = run::run(&spec, &options(&args.spec, quiet))?;
    println!("{}", dir.join("report.md").display());
    Ok(())
}

/// Runs `caplab resume RUN_DIR`.
pub fn resume(run_dir: &Path, quiet: bool) -> Result<()> {
    let opts = RunOptions {
        quiet,
        source_dir: PathBuf::from("."),
    };
    let dir = run::resume(run_dir, &opts)?;
    println!("{}", dir.join("report.md").display());
    Ok(())
}
