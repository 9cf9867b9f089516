//! `caplab score`: the arguments of [`caplab_runner::score`].

use std::path::PathBuf;

use anyhow::Result;
use caplab_runner::score::{self, ScoreRequest};

/// Arguments of `caplab score`.
#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// References: a COCO captions annotation JSON or a caplab/Flickr8k captions.txt (image,caption).
    #[arg(long)]
    pub refs: PathBuf,
    /// Results: a COCO results JSON ([{"image_id", "caption"}]).
    #[arg(long)]
    pub results: PathBuf,
    /// A second results file on the same images: paired bootstrap of the difference.
    #[arg(long)]
    pub compare: Option<PathBuf>,
    /// Fail when some reference images have no result (default: score the images the results
    /// file covers, with a warning, as pycocoevalcap does).
    #[arg(long)]
    pub require_all: bool,
    /// Write corpus and per-image scores (and the comparison) as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// METEOR 1.5 distribution directory (meteor-1.5.jar, data/paraphrase-en.gz); defaults to $CAPLAB_METEOR_DIR.
    #[arg(long)]
    pub meteor_dir: Option<PathBuf>,
    /// Bootstrap resamples for --compare.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap_samples: usize,
}

/// Runs `caplab score`.
pub fn run(args: ScoreArgs) -> Result<()> {
    score::run(&ScoreRequest {
        refs: args.refs,
        results: args.results,
        compare: args.compare,
        require_all: args.require_all,
        out: args.out,
        meteor_dir: args.meteor_dir,
        bootstrap_samples: args.bootstrap_samples,
    })
}
