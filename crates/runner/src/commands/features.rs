//! `caplab features`: the arguments of [`caplab_runner::encode`].

use std::path::PathBuf;

use anyhow::Result;
use caplab_models::encoder::Arch;
use caplab_runner::encode::{self, FeaturesRequest};
use caplab_runner::spec::{DeviceChoice, Precision};

/// Arguments of `caplab features`.
#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// Encoder architecture, by torchvision name (resnet50, vgg16, inception_v3, ...).
    #[arg(long)]
    pub encoder: Arch,
    /// torchvision weights (.pth/.pt or .safetensors); random initialisation when omitted.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Directory of images (*.jpg, *.jpeg, *.png), encoded in file-name order.
    #[arg(long)]
    pub images: PathBuf,
    /// Output file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Also store the spatial grid before the final pooling.
    #[arg(long)]
    pub spatial: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Square input side in pixels (default: the architecture's, e.g. 224; 299 for inception_v3).
    #[arg(long)]
    pub size: Option<u32>,
    /// inception_v3 only: skip torchvision's `transform_input` (for weights trained without it).
    #[arg(long)]
    pub no_transform_input: bool,
    /// Where to encode: cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:cpu or auto (as `experiment.device`).
    #[arg(long, default_value = "auto", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
    /// Float type of the encoder on CUDA: f32, bf16 or f16 (as `experiment.precision`); the
    /// file always stores f32.
    #[arg(long, default_value = "f32", value_parser = Precision::parse)]
    pub precision: Precision,
    /// Refuse any image of more than N pixels, read from its header (default 100 megapixels).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_image_pixels: Option<u64>,
}

/// Runs `caplab features`.
pub fn run(args: FeaturesArgs, quiet: bool) -> Result<()> {
    let request = FeaturesRequest {
        encoder: args.encoder,
        weights: args.weights,
        images: args.images,
        out: args.out,
        spatial: args.spatial,
        batch_size: args.batch_size,
        size: args.size,
        no_transform_input: args.no_transform_input,
        device: args.device,
        precision: args.precision,
        max_image_pixels: args.max_image_pixels,
    };
    encode::run(&request, quiet)
}
