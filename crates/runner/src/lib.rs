//! The caplab runner: image-captioning experiments from a TOML spec on Burn.
//!
//! This crate is the run machinery behind the `caplab` binary (a thin clap front end in
//! `main.rs`), usable on its own:
//!
//! - [`spec`]: the typed experiment spec (load, layer, validate);
//! - [`prepare`]: dataset, vocabulary and image pipeline of a spec;
//! - [`run`]: `caplab run` / `caplab resume` — prepare, train, evaluate, report in one run
//!   directory; [`train`], [`loader`], [`model`], [`epoch`], [`checkpoint`] and [`history`]
//!   make training resumable to the identical result; [`cputime`] measures how many cores an
//!   epoch kept busy;
//! - [`evaluate`], [`report`], [`tensorboard`], [`overlay`]: test decoding and scoring, reports,
//!   event files, attention overlays;
//! - [`sweep`]: `caplab sweep` — seeds × grids of trials, locally or as a Slurm job array;
//! - [`score`], [`features`], [`datacheck`]: `caplab score`, `caplab features` and
//!   `caplab data check`.
//! - [`compare`]: `caplab compare` — groups of runs over seeds, a paired bootstrap against a
//!   baseline, tables (polars: CSV, Parquet), an HTML page.
//!
//! Dependencies point one way: spec ← schedule ← history; nothing below `run` imports it.

pub mod backend;
pub mod batch;
pub mod bench;
pub mod caption;
pub mod checkpoint;
pub mod clip;
pub mod compare;
pub mod cputime;
pub mod datacheck;
pub mod epoch;
pub mod eval;
pub mod evaluate;
pub mod features;
pub mod fsutil;
pub mod history;
pub mod html;
pub mod init_from;
pub mod loader;
pub mod metrics;
pub mod model;
pub mod overlay;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod run;
pub mod schedule;
pub mod score;
pub mod scst;
pub mod spec;
pub mod sweep;
pub mod tensorboard;
pub mod train;
