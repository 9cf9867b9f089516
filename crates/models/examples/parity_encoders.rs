//! Rust side of the full-model encoder parity (`scripts/parity/encoders.py parity`).
//!
//! Usage: `parity_encoders ARCH WEIGHTS INPUT OUT_DIR`. Builds `ARCH` (a torchvision name),
//! imports `WEIGHTS` (torchvision `state_dict` as `.safetensors` or `.pth`), reads the tensor
//! `input` `[B, 3, H, W]` from the `INPUT` safetensors file, runs `forward_both` on NdArray and
//! writes `OUT_DIR/ARCH.pooled.f32` and `OUT_DIR/ARCH.spatial.f32` (raw little-endian f32).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::backend::NdArray;
use burn::tensor::Tensor;
use burn_store::{ModuleStore, SafetensorsStore};
use caplab_models::encoder::{Arch, EncoderConfig};

type B = NdArray<f32>;

/// Boxed-error result (the crate has no `anyhow` dependency).
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn read_input(path: &Path, device: &burn::tensor::Device<B>) -> Result<Tensor<B, 4>> {
    let mut store = SafetensorsStore::from_file(path);
    let snapshots = store.get_all_snapshots().map_err(|e| e.to_string())?;
    let snapshot = snapshots
        .get("input")
        .ok_or_else(|| format!("no tensor 'input' in {}", path.display()))?;
    let data = snapshot.to_data().map_err(|e| e.to_string())?;
    let data = data.convert::<f32>();
    Ok(Tensor::from_data(data, device))
}

fn write_f32(path: &Path, tensor: Tensor<B, 2>) -> Result<()> {
    let values = tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes)?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, weights, input, out_dir] = args.as_slice() else {
        return Err("usage: parity_encoders ARCH WEIGHTS INPUT OUT_DIR".into());
    };
    let arch: Arch = arch.parse()?;
    let device = Default::default();
    let start = Instant::now();
    let encoder = EncoderConfig::new(arch)
        .with_weights(Some(PathBuf::from(weights)))
        .load::<B>(&device)?;
    let loaded = start.elapsed();
    let images = read_input(Path::new(input), &device)?;
    let start = Instant::now();
    let (pooled, spatial) = encoder.forward_both(images);
    let dims = spatial.dims();
    let out_dir = Path::new(out_dir);
    write_f32(&out_dir.join(format!("{arch}.pooled.f32")), pooled)?;
    write_f32(
        &out_dir.join(format!("{arch}.spatial.f32")),
        spatial.flatten(1, 3),
    )?;
    eprintln!(
        "{arch}: load {:.2}s, forward {:.2}s, spatial {dims:?}",
        loaded.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
