//! Rust side of the full-model encoder parity (`scripts/parity/encoders.py parity`).
//!
//! Usage: `parity_encoders ARCH WEIGHTS INPUT OUT_DIR [f32|f64|flex]`. Builds `ARCH` (a
//! torchvision name, or a CLIP tower such as `clip_vit_b_32`), imports `WEIGHTS` (torchvision
//! `state_dict`, or open_clip's for CLIP, as `.safetensors` or `.pth`; `scripts/parity/vit.py`), reads the
//! tensor `input` `[B, 3, H, W]` from the `INPUT` safetensors file, runs `forward_both` on NdArray
//! in the chosen float type (default f32), or on Flex (f32, the CPU backend `caplab run` uses), and
//! writes `OUT_DIR/ARCH.{pooled,spatial}.{f32,f64,flex}` (raw little-endian). The f64 run shows the implementation equals torchvision's up to float64
//! rounding, which separates structural differences from float32 rounding noise.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Element, Tensor};
use burn_store::{ModuleStore, SafetensorsStore};
use caplab_models::encoder::{Arch, Backbone, EncoderConfig};

/// Boxed-error result (the crate has no `anyhow` dependency).
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn read_input<B: Backend>(path: &Path, device: &B::Device) -> Result<Tensor<B, 4>> {
    let mut store = SafetensorsStore::from_file(path);
    let snapshots = store.get_all_snapshots().map_err(|e| e.to_string())?;
    let snapshot = snapshots
        .get("input")
        .ok_or_else(|| format!("no tensor 'input' in {}", path.display()))?;
    let data = snapshot.to_data().map_err(|e| e.to_string())?;
    Ok(Tensor::from_data(data.convert::<B::FloatElem>(), device))
}

/// Writes a tensor as raw little-endian values of the float type `E`.
fn write_raw<B: Backend, E: Element>(path: &Path, tensor: Tensor<B, 2>) -> Result<()> {
    let data = tensor.into_data().convert::<E>();
    std::fs::write(path, data.as_bytes())?;
    Ok(())
}

fn run<B: Backend, E: Element>(
    arch: Arch,
    weights: &str,
    input: &str,
    out_dir: &Path,
    suffix: &str,
) -> Result<()> {
    let device = B::Device::default();
    let start = Instant::now();
    let encoder = EncoderConfig::new(arch)
        .with_weights(Some(PathBuf::from(weights)))
        .load::<B>(&device)?;
    let loaded = start.elapsed();
    let images = read_input::<B>(Path::new(input), &device)?;
    let start = Instant::now();
    let (pooled, spatial) = encoder.forward_both(images);
    let dims = spatial.dims();
    write_raw::<B, E>(&out_dir.join(format!("{arch}.pooled.{suffix}")), pooled)?;
    write_raw::<B, E>(
        &out_dir.join(format!("{arch}.spatial.{suffix}")),
        spatial.flatten(1, 3),
    )?;
    eprintln!(
        "{arch} ({suffix}): load {:.2}s, forward {:.2}s, spatial {dims:?}",
        loaded.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (arch, weights, input, out_dir, precision) = match args.as_slice() {
        [a, w, i, o] => (a, w, i, o, "f32"),
        [a, w, i, o, p] => (a, w, i, o, p.as_str()),
        _ => return Err("usage: parity_encoders ARCH WEIGHTS INPUT OUT_DIR [f32|f64|flex]".into()),
    };
    let arch: Arch = arch.parse()?;
    let out_dir = Path::new(out_dir);
    match precision {
        "f32" => run::<NdArray<f32>, f32>(arch, weights, input, out_dir, "f32"),
        "f64" => run::<NdArray<f64>, f64>(arch, weights, input, out_dir, "f64"),
        "flex" => run::<Flex, f32>(arch, weights, input, out_dir, "flex"),
        other => Err(format!("precision must be f32, f64 or flex, got '{other}'").into()),
    }
}
