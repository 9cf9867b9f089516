//! `caplab data synth` and `caplab data check`.

use std::path::PathBuf;

use anyhow::Result;
use caplab_runner::datacheck;
use clap::Subcommand;

/// `caplab data …`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
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

/// Runs `caplab data …`.
pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth {
            out,
            images,
            size,
            seed,
        } => {
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
        DataCommand::Check { spec, set } => datacheck::run(&spec, &set),
    }
}
