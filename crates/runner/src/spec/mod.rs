//! The experiment spec: a typed serde tree, each section owned by the crate it configures.
//!
//! This module is the leaf of the runner: it imports no other runner module, and every other
//! module reads the spec through it.
//!
//! - [`sections`]: the types of every section (`[experiment]`, `[preprocess]`, `[train]` with
//!   its learning-rate schedule and SCST settings, `[eval]`, `[sweep]`), the checkpoint choice
//!   and the evaluated split;
//! - [`load`]: the TOML file, `CAPLAB_*` variables and `--set` overrides layered into one spec;
//!   a run's saved spec read back exactly;
//! - [`validate`]: value ranges and key combinations serde cannot express.

pub mod load;
pub mod sections;
pub mod validate;

pub use load::{load, load_exact, load_for_eval, nest};
pub use sections::*;

#[cfg(test)]
mod tests;
