//! `caplab sweep`, and `caplab run` of a spec with several seeds or a `[sweep]` section: the
//! command-line arguments (clap) and the glue from them to [`caplab_runner::sweep`] — plan or
//! open the sweep, then run one trial, print the status, write (and submit) the Slurm script,
//! or run every unfinished trial here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use caplab_runner::run::RunOptions;
use caplab_runner::spec;
use caplab_runner::sweep::{status_table, SlurmOptions, Status, Sweep};

/// Command-line arguments of `caplab sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The experiment spec (TOML), or an existing sweep directory.
    pub spec: PathBuf,
    /// Override a spec key of every trial, e.g. `--set train.epochs=2`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Seeds of every trial setting, e.g. `--seeds 1,2,3` (replaces `experiment.seeds`).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Trials at once on this machine.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run only trial I in this process (what each local child and Slurm array task does).
    #[arg(long, value_name = "I")]
    pub trial: Option<usize>,
    /// List the trials, their directories and states, and exit.
    #[arg(long)]
    pub status: bool,
    /// Write a Slurm array job script (one task per trial) instead of running here.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: the partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// With --slurm: each task's time limit, HH:MM:SS.
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// With --slurm: GPUs per task.
    #[arg(long, requires = "slurm")]
    pub gpus_per_task: Option<u32>,
    /// With --slurm: CPUs per task.
    #[arg(long, requires = "slurm")]
    pub cpus_per_task: Option<u32>,
    /// With --slurm: at most K array tasks at once.
    #[arg(long, requires = "slurm")]
    pub max_parallel: Option<usize>,
    /// With --slurm: submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
}

/// `caplab sweep`: plans the sweep of a spec file (or opens a sweep directory), then runs one
/// trial (`--trial`), prints the states (`--status`), writes the Slurm script (`--slurm`), or
/// runs every unfinished trial here, `--jobs` at a time.
pub fn run(args: SweepArgs, quiet: bool) -> Result<()> {
    let plan = if args.spec.is_dir() {
        if !args.set.is_empty() || !args.seeds.is_empty() {
            bail!(
                "{} is a sweep directory: its spec is fixed (--set/--seeds apply to a spec file)",
                args.spec.display()
            );
        }
        Sweep::open(&args.spec)?
    } else {
        let mut spec = spec::load(&args.spec, &args.set)?;
        if !args.seeds.is_empty() {
            spec.experiment.seeds = args.seeds;
        }
        Sweep::plan(&spec)?
    };
    if let Some(index) = args.trial {
        let source_dir = match args.spec.parent().filter(|_| !args.spec.is_dir()) {
            Some(dir) => dir.to_path_buf(),
            None => PathBuf::from("."),
        };
        let opts = RunOptions { quiet, source_dir };
        let dir = plan.run_trial(index, &opts)?;
        println!("{}", dir.join("report.md").display());
        return Ok(());
    }
    if args.status {
        print!("{}", status_table(&plan, &Default::default()));
        return Ok(());
    }
    if args.slurm {
        let origin = args.spec.display().to_string();
        plan.create(&origin)?;
        let exe = std::env::current_exe().context("locating the caplab binary")?;
        let slurm = SlurmOptions {
            partition: args.partition,
            time: args.time,
            gpus_per_task: args.gpus_per_task,
            cpus_per_task: args.cpus_per_task,
            max_parallel: args.max_parallel,
            submit: args.submit,
        };
        let (script, job) = plan.slurm(&exe, &slurm, &origin)?;
        match job {
            Some(job) => println!("{job}"),
            None => println!(
                "{} trials in {}\nsubmit with: sbatch {}",
                plan.trials.len(),
                plan.dir.display(),
                script.display()
            ),
        }
        return Ok(());
    }
    run_local(plan, &args.spec, args.jobs, quiet)
}

/// Runs a sweep's unfinished trials here, `jobs` at a time (`origin`: the spec file or sweep
/// directory it came from, recorded in its manifest); prints the status table and the sweep
/// directory, and fails when a trial failed.
pub fn run_local(plan: Sweep, origin: &Path, jobs: usize, quiet: bool) -> Result<()> {
    let origin = origin.display().to_string();
    plan.create(&origin)?;
    let exe = std::env::current_exe().context("locating the caplab binary")?;
    let live = plan.run_local(&exe, jobs, &origin, quiet)?;
    print!("{}", status_table(&plan, &live));
    let failed = live.values().filter(|s| **s == Status::Failed).count();
    if failed > 0 {
        bail!(
            "{failed} of {} trials failed (logs in {}); run the same command again to retry them",
            plan.trials.len(),
            plan.dir.join("logs").display()
        );
    }
    println!("{}", plan.dir.display());
    Ok(())
}
