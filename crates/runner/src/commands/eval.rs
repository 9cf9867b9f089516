//! `caplab eval` and `caplab caption`: the arguments of [`caplab_runner::eval`] and
//! [`caplab_runner::caption`].

use std::path::PathBuf;

use anyhow::{bail, Result};
use caplab_runner::caption::{self, CaptionRequest};
use caplab_runner::eval;
use caplab_runner::run::RunOptions;
use caplab_runner::spec::{CheckpointChoice, DeviceChoice, EvalSplit};
use clap::Args;

/// Arguments of `caplab eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Which checkpoint: `best` (the run's own choice), `last` or an epoch number.
    #[arg(long, default_value = "best")]
    checkpoint: CheckpointChoice,
    /// The split to decode and score.
    #[arg(long, default_value = "test", value_parser = ["test", "val"])]
    split: String,
    /// Override an `eval.*` key, e.g. `--set eval.search='{ method = "beam", beam_size = 5 }'`.
    #[arg(long = "set", value_name = "eval.KEY=VALUE")]
    set: Vec<String>,
    /// Evaluate on this device instead of the run's own (cpu, cuda:N, wgpu:N, wgpu:cpu, auto):
    /// a checkpoint trained on one device evaluates on another.
    #[arg(long, value_parser = DeviceChoice::parse)]
    device: Option<DeviceChoice>,
}

/// `--device D` as the `--set experiment.device="D"` it stands for, before the other overrides.
fn with_device(device: Option<DeviceChoice>, set: Vec<String>) -> Vec<String> {
    device
        .map(|d| format!("experiment.device=\"{d}\""))
        .into_iter()
        .chain(set)
        .collect()
}

/// Runs `caplab eval`.
pub fn run(args: EvalArgs, quiet: bool) -> Result<()> {
    let split = match args.split.as_str() {
        "val" => EvalSplit::Val,
        _ => EvalSplit::Test,
    };
    let opts = RunOptions {
        quiet,
        source_dir: PathBuf::from("."),
    };
    let overrides = with_device(args.device, args.set);
    let dir = eval::eval(&args.run_dir, args.checkpoint, split, &overrides, &opts)?;
    println!("{}", dir.join("report.md").display());
    Ok(())
}

/// Arguments of `caplab caption`.
#[derive(Args, Debug)]
pub struct CaptionArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Image files (JPEG, PNG) and directories.
    #[arg(required = true, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Which checkpoint: `best`, `last` or an epoch number.
    #[arg(long, default_value = "best")]
    checkpoint: CheckpointChoice,
    /// Search method (default: the run's `eval.search`).
    #[arg(long, value_parser = ["greedy", "beam", "sample"])]
    search: Option<String>,
    /// Beam width, with `--search beam`.
    #[arg(long)]
    beam_size: Option<usize>,
    /// Other `eval.*` overrides, e.g. `--set eval.search.max_len=20`.
    #[arg(long = "set", value_name = "eval.KEY=VALUE")]
    set: Vec<String>,
    /// Caption on this device instead of the run's own (cpu, cuda:N, wgpu:N, wgpu:cpu, auto).
    #[arg(long, value_parser = DeviceChoice::parse)]
    device: Option<DeviceChoice>,
    /// One JSON object per line: `{"image_id": PATH, "caption": TEXT}`.
    #[arg(long)]
    json: bool,
    /// Write attention overlays (attention decoders) into this directory.
    #[arg(long)]
    overlays: Option<PathBuf>,
    /// Refuse (skip, naming it) any image of more than N pixels, read from its header (default:
    /// the run's `preprocess.max_image_pixels`, 100 megapixels).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_image_pixels: Option<u64>,
}

/// Runs `caplab caption`: `--search`/`--beam-size` become an `eval.search` override.
pub fn caption(args: CaptionArgs, quiet: bool) -> Result<()> {
    let mut overrides = with_device(args.device, Vec::new());
    match (args.search.as_deref(), args.beam_size) {
        (Some(method), beam) => {
            let beam = match (method, beam) {
                ("beam", Some(k)) => format!(", beam_size = {k}"),
                (_, Some(_)) => bail!("--beam-size goes with --search beam"),
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
    let failed = caption::caption(&CaptionRequest {
        run_dir: args.run_dir,
        inputs: args.images,
        checkpoint: args.checkpoint,
        overrides,
        json: args.json,
        overlays: args.overlays,
        quiet,
        max_image_pixels: args.max_image_pixels,
    })?;
    if failed > 0 {
        bail!("{failed} image file(s) could not be read (named above); the others were captioned");
    }
    Ok(())
}
