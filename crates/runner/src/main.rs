//! `caplab`: image-captioning experiments from a TOML spec — train, evaluate, report, compare.
//! A thin command line over the `caplab_runner` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use caplab_runner::{datacheck, features, run, score, spec, sweep};
use clap::{Args, Parser, Subcommand};

/// mimalloc keeps freed tensor buffers for reuse: with glibc's allocator, every large tensor
/// came from a fresh `mmap` and was page-faulted in, op after op (a quarter of a training step).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Image-captioning experiments on Burn.
#[derive(Parser, Debug)]
#[command(name = "caplab", version, about)]
struct Cli {
    /// Only warnings and errors, no progress bars (for CI).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train and evaluate the experiment a spec describes; writes a new run directory.
    Run(RunArgs),
    /// Run a spec's trials (seeds × `[sweep]` grid) into one sweep directory, locally N at a
    /// time or as a Slurm job array; re-running skips finished trials and resumes the others.
    Sweep(SweepArgs),
    /// Continue an interrupted run from its last checkpoint.
    Resume {
        /// The run directory (runs/<experiment>/<timestamp>-<id>).
        run_dir: PathBuf,
    },
    /// Re-decode and re-score a trained run (a checkpoint, a split, other `eval.*` settings)
    /// into RUN_DIR/evals/<timestamp>-<id>/, without training.
    Eval(EvalArgs),
    /// Caption image files or directories (recursively, in name order) with a trained run.
    Caption(CaptionArgs),
    /// Datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Encode a folder of images with a torchvision encoder into a safetensors feature file.
    Features(features::FeaturesArgs),
    /// Score a COCO results file against references, as pycocoevalcap does.
    Score(score::ScoreArgs),
    /// Compare runs, evaluations and sweeps: groups over seeds with confidence intervals, a
    /// paired bootstrap against a baseline, and compare.{md,csv,parquet,html} with --out.
    Compare(caplab_runner::compare::CompareArgs),
    /// GPU benchmarks of caplab's code paths (issue 15; run by scripts/gpu/check.sh).
    #[command(subcommand, hide = true)]
    Bench(caplab_runner::bench::BenchCommand),
}

#[derive(Args, Debug)]
struct RunArgs {
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

#[derive(Args, Debug)]
struct SweepArgs {
    /// The experiment spec (TOML), or an existing sweep directory.
    spec: PathBuf,
    /// Override a spec key of every trial, e.g. `--set train.epochs=2`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Seeds of every trial setting, e.g. `--seeds 1,2,3` (replaces `experiment.seeds`).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Trials at once on this machine.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run only trial I in this process (what each local child and Slurm array task does).
    #[arg(long, value_name = "I")]
    trial: Option<usize>,
    /// List the trials, their directories and states, and exit.
    #[arg(long)]
    status: bool,
    /// Write a Slurm array job script (one task per trial) instead of running here.
    #[arg(long)]
    slurm: bool,
    /// With --slurm: the partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// With --slurm: each task's time limit, HH:MM:SS.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// With --slurm: GPUs per task.
    #[arg(long, requires = "slurm")]
    gpus_per_task: Option<u32>,
    /// With --slurm: CPUs per task.
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<u32>,
    /// With --slurm: at most K array tasks at once.
    #[arg(long, requires = "slurm")]
    max_parallel: Option<usize>,
    /// With --slurm: submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    submit: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Which checkpoint: `best` (the run's own choice), `last` or an epoch number.
    #[arg(long, default_value = "best")]
    checkpoint: caplab_runner::eval::CheckpointChoice,
    /// The split to decode and score.
    #[arg(long, value_enum, default_value = "test")]
    split: caplab_runner::eval::EvalSplit,
    /// Override an `eval.*` key, e.g. `--set eval.search='{ method = "beam", beam_size = 5 }'`.
    #[arg(long = "set", value_name = "eval.KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Args, Debug)]
struct CaptionArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Image files (JPEG, PNG) and directories.
    #[arg(required = true, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Which checkpoint: `best`, `last` or an epoch number.
    #[arg(long, default_value = "best")]
    checkpoint: caplab_runner::eval::CheckpointChoice,
    /// Search method (default: the run's `eval.search`).
    #[arg(long, value_parser = ["greedy", "beam", "sample"])]
    search: Option<String>,
    /// Beam width, with `--search beam`.
    #[arg(long)]
    beam_size: Option<usize>,
    /// Other `eval.*` overrides, e.g. `--set eval.search.max_len=20`.
    #[arg(long = "set", value_name = "eval.KEY=VALUE")]
    set: Vec<String>,
    /// One JSON object per line: `{"image_id": PATH, "caption": TEXT}`.
    #[arg(long)]
    json: bool,
    /// Write attention overlays (attention decoders) into this directory.
    #[arg(long)]
    overlays: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Write the built-in synthetic captioning dataset (JPEG scenes, 5 captions each).
    Synth {
        /// Output directory (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Number of images.
        #[arg(long)]
        images: Option<usize>,
        /// Image side in pixels.
        #[arg(long)]
        size: Option<u32>,
        /// Seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Read a spec's dataset as a run does, list every problem (missing or truncated images,
    /// duplicates, images in no split, empty captions, bad lines) and print its statistics;
    /// exits non-zero when there is any error.
    Check {
        /// The experiment spec (TOML); its `data` and `preprocess.vocab` sections are used.
        spec: PathBuf,
        /// Override a spec key, e.g. `--set data.max_images=100` (value parsed as TOML).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

fn init_tracing(quiet: bool) {
    // burn-train logs every iteration at info: keep it at warn.
    let default = if quiet {
        "warn"
    } else {
        "info,burn_train=warn,burn_core=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAPLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only when a person reads a terminal, never in a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3 `mi_option_e`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // mimalloc gives freed memory back to the OS 10 ms after it is freed by default; a training
    // step frees and re-allocates the same large buffers every few milliseconds, and each came
    // back as fresh pages the kernel zeroes on first touch (137 000 page faults and ~17 % of a
    // baseline epoch). Keep it: the process stays at its peak footprint, as PyTorch's caching
    // allocator does. `MIMALLOC_PURGE_DELAY` still overrides this.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; mimalloc allows it at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    // Autodiff over a captioner's time steps recurses deeply, on threads burn spawns: give every
    // thread a large stack unless the user chose one.
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        std::env::set_var("RUST_MIN_STACK", (64usize << 20).to_string());
    }
    let cli = Cli::parse();
    init_tracing(cli.quiet);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a sweep's unfinished trials here; prints the sweep directory.
fn run_sweep(plan: sweep::Sweep, origin: &std::path::Path, jobs: usize, quiet: bool) -> Result<()> {
    let origin = origin.display().to_string();
    plan.create(&origin)?;
    let exe = std::env::current_exe().context("locating the caplab binary")?;
    let live = plan.run_local(&exe, jobs, &origin, quiet)?;
    print!("{}", sweep::status_table(&plan, &live));
    let failed = live
        .values()
        .filter(|s| **s == sweep::Status::Failed)
        .count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} trials failed (logs in {}); run the same command again to retry them",
            plan.trials.len(),
            plan.dir.join("logs").display()
        );
    }
    println!("{}", plan.dir.display());
    Ok(())
}

fn dispatch(cli: Cli) -> Result<()> {
    let mut opts = run::RunOptions {
        quiet: cli.quiet,
        source_dir: PathBuf::from("."),
    };
    match cli.command {
        Command::Run(args) => {
            let mut spec = spec::load(&args.spec, &args.set)?;
            if !args.seeds.is_empty() {
                spec.experiment.seeds = args.seeds;
            }
            if let Some(dir) = args.spec.parent() {
                opts.source_dir = dir.to_path_buf();
            }
            if args.dry_run {
                print!("{}", spec.to_toml()?);
                return Ok(());
            }
            if spec.sweep.is_some() || !spec.experiment.seeds.is_empty() {
                // Several trials: a local sweep, one at a time.
                return run_sweep(sweep::Sweep::plan(&spec)?, &args.spec, 1, cli.quiet);
            }
            let dir = run::run(&spec, &opts)?;
            println!("{}", dir.join("report.md").display());
            Ok(())
        }
        Command::Caption(args) => {
            let mut overrides = Vec::new();
            match (args.search.as_deref(), args.beam_size) {
                (Some(method), beam) => {
                    let beam = match (method, beam) {
                        ("beam", Some(k)) => format!(", beam_size = {k}"),
                        (_, Some(_)) => anyhow::bail!("--beam-size goes with --search beam"),
                        _ => String::new(),
                    };
                    overrides.push(format!("eval.search={{ method = \"{method}\"{beam} }}"));
                }
                (None, Some(k)) => overrides.push(format!(
                    "eval.search={{ method = \"beam\", beam_size = {k} }}"
                )),
                (None, None) => {}
            }
            overrides.extend(args.set);
            let images = args.images.len();
            let failed =
                caplab_runner::caption::caption(&caplab_runner::caption::CaptionRequest {
                    run_dir: args.run_dir,
                    inputs: args.images,
                    checkpoint: args.checkpoint,
                    overrides,
                    json: args.json,
                    overlays: args.overlays,
                    quiet: cli.quiet,
                })?;
            if failed > 0 {
                anyhow::bail!("{failed} image file(s) could not be read (named above); the others were captioned");
            }
            let _ = images;
            Ok(())
        }
        Command::Eval(args) => {
            let dir = caplab_runner::eval::eval(
                &args.run_dir,
                args.checkpoint,
                args.split,
                &args.set,
                &opts,
            )?;
            println!("{}", dir.join("report.md").display());
            Ok(())
        }
        Command::Sweep(args) => {
            let plan = if args.spec.is_dir() {
                if !args.set.is_empty() || !args.seeds.is_empty() {
                    anyhow::bail!(
                        "{} is a sweep directory: its spec is fixed (--set/--seeds apply to a spec file)",
                        args.spec.display()
                    );
                }
                sweep::Sweep::open(&args.spec)?
            } else {
                let mut spec = spec::load(&args.spec, &args.set)?;
                if !args.seeds.is_empty() {
                    spec.experiment.seeds = args.seeds;
                }
                sweep::Sweep::plan(&spec)?
            };
            if let Some(dir) = args.spec.parent().filter(|_| !args.spec.is_dir()) {
                opts.source_dir = dir.to_path_buf();
            }
            if let Some(index) = args.trial {
                let dir = plan.run_trial(index, &opts)?;
                println!("{}", dir.join("report.md").display());
                return Ok(());
            }
            if args.status {
                print!("{}", sweep::status_table(&plan, &Default::default()));
                return Ok(());
            }
            if args.slurm {
                plan.create(&args.spec.display().to_string())?;
                let exe = std::env::current_exe().context("locating the caplab binary")?;
                let slurm = sweep::SlurmOptions {
                    partition: args.partition,
                    time: args.time,
                    gpus_per_task: args.gpus_per_task,
                    cpus_per_task: args.cpus_per_task,
                    max_parallel: args.max_parallel,
                    submit: args.submit,
                };
                let (script, job) = plan.slurm(&exe, &slurm, &args.spec.display().to_string())?;
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
            run_sweep(plan, &args.spec, args.jobs, cli.quiet)
        }
        Command::Resume { run_dir } => {
            let dir = run::resume(&run_dir, &opts)?;
            println!("{}", dir.join("report.md").display());
            Ok(())
        }
        Command::Data(DataCommand::Synth {
            out,
            images,
            size,
            seed,
        }) => {
            let mut cfg = caplab_data::synth::SynthConfig::default();
            if let Some(n) = images {
                cfg.images = n;
            }
            if let Some(s) = size {
                cfg.size = s;
            }
            if let Some(s) = seed {
                cfg.seed = s;
            }
            let summary = caplab_data::synth::generate(&cfg, &out)?;
            println!("{summary:?}");
            Ok(())
        }
        Command::Data(DataCommand::Check { spec, set }) => datacheck::run(&spec, &set),
        Command::Score(args) => score::run(&args),
        Command::Features(args) => features::run(&args, cli.quiet),
        Command::Compare(args) => caplab_runner::compare::run(&args),
        Command::Bench(cmd) => caplab_runner::bench::run(&cmd),
    }
}
