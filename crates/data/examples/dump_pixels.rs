//! Writes caplab's preprocessed pixels of one image as raw little-endian f32 (CHW), for
//! `scripts/parity/preprocess.py`: `cargo run -p caplab-data --example dump_pixels -- IMG SIZE OUT`.

use std::path::PathBuf;

use caplab_data::image::{load_image, ImageConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [img, size, out] = args.as_slice() else {
        return Err("usage: dump_pixels IMAGE SIZE OUT".into());
    };
    let cfg = ImageConfig {
        size: size.parse()?,
        ..ImageConfig::default()
    };
    let px = load_image(&PathBuf::from(img), &cfg)?;
    let bytes: Vec<u8> = px.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out, bytes)?;
    Ok(())
}
