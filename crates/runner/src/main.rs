//! `caplab`: image-captioning experiments from a TOML spec — train, evaluate, report, compare.
//! A thin command line over the `caplab_runner` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use caplab_runner::{features, run, score, spec};
use clap::{Args, Parser, Subcommand};

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
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The experiment spec (TOML).
    spec: PathBuf,
    /// Override a spec key, e.g. `--set train.epochs=2` (value parsed as TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print the resolved spec and exit.
    #[arg(long)]
    dry_run: bool,
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

fn main() -> ExitCode {
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

fn dispatch(cli: Cli) -> Result<()> {
    let mut opts = run::RunOptions {
        quiet: cli.quiet,
        source_dir: PathBuf::from("."),
    };
    match cli.command {
        Command::Run(args) => {
            let spec = spec::load(&args.spec, &args.set)?;
            if let Some(dir) = args.spec.parent() {
                opts.source_dir = dir.to_path_buf();
            }
            if args.dry_run {
                print!("{}", spec.to_toml()?);
                return Ok(());
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
        Command::Score(args) => score::run(&args),
        Command::Features(args) => features::run(&args, cli.quiet),
        Command::Compare(args) => caplab_runner::compare::run(&args),
    }
}
