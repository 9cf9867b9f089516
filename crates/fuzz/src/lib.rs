//! Fuzz targets for caplab's parsers, and the input mutator of the stable fuzz harness.
//!
//! Each target ([`targets::Target`]) takes arbitrary bytes and feeds them to the public parsing
//! entry point caplab itself calls (writing them to a scratch file where that entry point takes
//! a path), so a target fails exactly when caplab would: a panic, a hang or an unbounded
//! allocation on some input. Three programs run them:
//!
//! - `tests/fuzz.rs` (`cargo test -p caplab-fuzz --test fuzz`, part of `just test` and CI):
//!   replays the committed corpus (`fuzz/corpus/<target>/`) and regression inputs
//!   (`fuzz/regressions/<target>/`), then mutates them ([`mutate`]) for a bounded time, with a
//!   per-input deadline and heap bound;
//! - `fuzz/` (cargo-fuzz, `just fuzz TARGET SECS`): coverage-guided fuzzing of the Burn-free
//!   targets with libFuzzer;
//! - the parsers' own crates keep a unit test for each bug found.
//!
//! The targets whose parsers live in Burn crates (the spec with `--set`, the weight readers)
//! need the `spec` and `weights` features (`burn`, on by default; off for cargo-fuzz).

pub mod mutate;
pub mod scratch;
pub mod targets;

pub use targets::{all, by_name, Structure, Target};
