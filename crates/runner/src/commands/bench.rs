//! `caplab bench` (hidden): the arguments of the GPU benchmarks in [`caplab_runner::bench`].

use anyhow::Result;
use caplab_models::encoder::Arch;
use caplab_runner::bench::{self, Bench, BenchDecoder, DecodeBench, EncodersBench, TrainStepBench};
use caplab_runner::spec::{DeviceChoice, Precision};

/// `caplab bench …`.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// One decoder training step on cached features.
    TrainStep(TrainStepArgs),
    /// Batched beam search k = 5, or greedy search.
    #[command(alias = "beam")]
    Decode(DecodeArgs),
    /// Frozen feature extraction through ResNet-50 and Inception v3.
    Encoders(EncodersArgs),
}

/// `caplab bench encoders`.
#[derive(clap::Args, Debug, Clone)]
pub struct EncodersArgs {
    #[command(flatten)]
    pub on: DeviceArgs,
    /// Timed batches per encoder (after one warm-up batch).
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Encoders (torchvision names), comma-separated, e.g. `vit_b_16`.
    #[arg(long, value_delimiter = ',', default_value = "resnet50,inception_v3")]
    pub arch: Vec<Arch>,
}

/// `--decoder lstm|transformer`.
fn parse_decoder(name: &str) -> Result<BenchDecoder, String> {
    match name {
        "lstm" => Ok(BenchDecoder::Lstm),
        "transformer" => Ok(BenchDecoder::Transformer),
        other => Err(format!("unknown decoder '{other}': lstm or transformer")),
    }
}

/// Where and in what precision a benchmark runs.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:cpu or auto.
    #[arg(long, default_value = "cpu", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
    /// f32, bf16 or f16 (CUDA only).
    #[arg(long, default_value = "f32", value_parser = Precision::parse)]
    pub precision: Precision,
}

/// `caplab bench train-step`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainStepArgs {
    #[command(flatten)]
    pub on: DeviceArgs,
    /// lstm (Show and Tell) or transformer (`[model.transformer]` defaults over a 7×7 grid).
    #[arg(long, default_value = "lstm", value_parser = parse_decoder)]
    pub decoder: BenchDecoder,
    /// Timed iterations (after 2 warm-up ones).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    pub images: usize,
    /// Captions per image (sequences = images × captions).
    #[arg(long, default_value_t = 1)]
    pub captions: usize,
    /// Vocabulary size.
    #[arg(long, default_value_t = 10_000)]
    pub vocab: usize,
}

/// `caplab bench decode`.
#[derive(clap::Args, Debug, Clone)]
pub struct DecodeArgs {
    #[command(flatten)]
    pub on: DeviceArgs,
    /// lstm, or transformer (timed with its key/value cache and without).
    #[arg(long, default_value = "lstm", value_parser = parse_decoder)]
    pub decoder: BenchDecoder,
    /// beam (k = 5) or greedy.
    #[arg(long, default_value = "beam", value_parser = ["beam", "greedy"])]
    pub search: String,
    /// Images in all.
    #[arg(long, default_value_t = 5000)]
    pub images: usize,
    /// Images per search call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Vocabulary size.
    #[arg(long, default_value_t = 10_000)]
    pub vocab: usize,
}

impl From<DeviceArgs> for bench::BenchDevice {
    fn from(a: DeviceArgs) -> Self {
        bench::BenchDevice {
            device: a.device,
            precision: a.precision,
        }
    }
}

/// Runs `caplab bench …`.
pub fn run(cmd: BenchCommand) -> Result<()> {
    let bench = match cmd {
        BenchCommand::TrainStep(a) => Bench::TrainStep(TrainStepBench {
            on: a.on.into(),
            decoder: a.decoder,
            iters: a.iters,
            images: a.images,
            captions: a.captions,
            vocab: a.vocab,
        }),
        BenchCommand::Decode(a) => Bench::Decode(DecodeBench {
            on: a.on.into(),
            decoder: a.decoder,
            search: a.search,
            images: a.images,
            batch: a.batch,
            vocab: a.vocab,
        }),
        BenchCommand::Encoders(a) => Bench::Encoders(EncodersBench {
            on: a.on.into(),
            iters: a.iters,
            batch: a.batch,
            archs: a.arch,
        }),
    };
    bench::run(&bench)
}
