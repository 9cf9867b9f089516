//! `caplab devices`: what this build can run on.

use anyhow::Result;

/// Prints the CPU, the CUDA devices and the wgpu adapters this binary sees, and what `auto`
/// picks.
pub fn run() -> Result<()> {
    for line in caplab_runner::backend::device_lines() {
        println!("{line}");
    }
    Ok(())
}
