//! Generates the synthetic dataset and prints timing plus a few captions.
//!
//! `cargo run -p caplab-data --example synth -- OUT_DIR [IMAGES] [SIZE] [SEED]`

use std::path::PathBuf;
use std::time::Instant;

use caplab_data::{generate, load_dataset, DatasetConfig, SynthConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: synth OUT_DIR [IMAGES] [SIZE] [SEED]")?,
    );
    let mut cfg = SynthConfig::default();
    if let Some(n) = args.next() {
        cfg.images = n.parse()?;
    }
    if let Some(s) = args.next() {
        cfg.size = s.parse()?;
    }
    if let Some(s) = args.next() {
        cfg.seed = s.parse()?;
    }
    let start = Instant::now();
    let summary = generate(&cfg, &out)?;
    println!("{summary:?} in {:.2}s", start.elapsed().as_secs_f32());
    let ds = load_dataset(&DatasetConfig::synth(&out))?;
    for rec in ds.images.iter().take(4) {
        println!("{} ({})", rec.id, rec.split);
        for c in &rec.captions {
            println!("  {c}");
        }
    }
    Ok(())
}
