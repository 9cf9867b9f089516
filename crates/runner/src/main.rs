//! `caplab`: image-captioning experiments from a TOML spec — train, evaluate, report, compare.
//! A thin command line over the `caplab_runner` library: the commands' arguments live in
//! `commands/`, one file per command; this file parses them, sets up logging and the
//! allocator, and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod commands;

use commands::{bench, compare, data, devices, eval, features, run, score, sweep};

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
    Run(run::RunArgs),
    /// Run a spec's trials (seeds × `[sweep]` grid) into one sweep directory, locally N at a
    /// time or as a Slurm job array; re-running skips finished trials and resumes the others.
    Sweep(sweep::SweepArgs),
    /// Continue an interrupted run from its last checkpoint.
    Resume {
        /// The run directory (runs/<experiment>/<timestamp>-<id>).
        run_dir: PathBuf,
    },
    /// Re-decode and re-score a trained run (a checkpoint, a split, other `eval.*` settings)
    /// into RUN_DIR/evals/<timestamp>-<id>/, without training.
    Eval(eval::EvalArgs),
    /// Caption image files or directories (recursively, in name order) with a trained run.
    Caption(eval::CaptionArgs),
    /// Datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Encode a folder of images with a torchvision encoder into a safetensors feature file.
    Features(features::FeaturesArgs),
    /// Score a COCO results file against references, as pycocoevalcap does.
    Score(score::ScoreArgs),
    /// Compare runs, evaluations and sweeps: groups over seeds with confidence intervals, a
    /// paired bootstrap against a baseline, and compare.{md,csv,parquet,html} with --out.
    Compare(compare::CompareArgs),
    /// List what this build can run on: the CPU, CUDA devices and wgpu adapters (type, f16),
    /// and what `experiment.device = "auto"` picks.
    Devices,
    /// GPU benchmarks of caplab's code paths (run by scripts/gpu/check.sh).
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCommand),
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
    // A panic on a GPU backend's device thread is swallowed by cubecl, which goes on with
    // tensors that were never computed: stop there, with what it means when it is known.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(hint) = caplab_runner::backend::buffer_too_big_hint(message) {
            eprintln!("{hint}");
        }
        if caplab_runner::backend::is_device_thread(std::thread::current().name()) {
            eprintln!(
                "error: the device failed (above); caplab stops rather than go on with tensors \
                 that were never computed (an interrupted run resumes with `caplab resume`)"
            );
            std::process::exit(101);
        }
    }));
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Run(args) => run::run(args, quiet),
        Command::Sweep(args) => sweep::run(args, quiet),
        Command::Resume { run_dir } => run::resume(&run_dir, quiet),
        Command::Eval(args) => eval::run(args, quiet),
        Command::Caption(args) => eval::caption(args, quiet),
        Command::Data(cmd) => data::run(cmd),
        Command::Features(args) => features::run(args, quiet),
        Command::Score(args) => score::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Devices => devices::run(),
    }
}
