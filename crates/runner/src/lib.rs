//! The caplab runner: image-captioning experiments from a TOML spec on Burn.
//!
//! This crate is the run machinery behind the `caplab` binary (whose clap arguments live in
//! the binary's `commands/`), usable on its own: every command is a function with plain
//! arguments. Its modules form layers; a module imports only from layers below its own
//! (checked in CI by `cargo modules dependencies --lib -p caplab-runner --acyclic`):
//!
//! 1. **Spec and utilities** — [`spec`] (the typed experiment spec: sections, loading,
//!    validation; it imports no other runner module), [`fsutil`] (the one atomic writer, run
//!    directory names), [`progress`], [`cputime`], [`html`] (pieces of the HTML pages).
//! 2. **Run state** — [`backend`] (device choice and dispatch), [`history`] (`history.jsonl`,
//!    the source of every per-epoch number), [`checkpoint`] (records, which epoch a command
//!    loads), [`tensorboard`], [`report`] (`report.{json,md,html}`, written in one place),
//!    [`overlay`] (attention maps).
//! 3. **Data** — [`batch`] (items, batches, a batch's decoder features), [`prepare`] (dataset,
//!    vocabulary and pixels of a spec), [`feature_cache`] (a frozen encoder's features, encoded
//!    once).
//! 4. **Training and evaluation** — [`train`] (burn-train's loop: the training step and its
//!    losses, SCST, the epoch's end, the LR schedule, the data loader) and [`evaluate`] (test
//!    decoding and pycocoevalcap-exact scoring).
//! 5. **Commands** — [`run`] (`caplab run` / `resume`), [`eval`], [`caption`], [`encode`]
//!    (`caplab features`), [`score`], [`datacheck`] (`caplab data check`), [`sweep`] (seeds ×
//!    grids, locally or on Slurm), [`compare`] (groups over seeds, paired bootstrap, tables,
//!    an HTML page) and [`bench`].
//!
//! `docs/architecture.md` draws these layers and follows one run through them.

pub mod backend;
pub mod batch;
pub mod bench;
pub mod caption;
pub mod checkpoint;
pub mod compare;
pub mod cputime;
pub mod datacheck;
pub mod encode;
pub mod eval;
pub mod evaluate;
pub mod feature_cache;
pub mod fsutil;
pub mod history;
pub mod html;
pub mod overlay;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod run;
pub mod score;
pub mod spec;
pub mod sweep;
pub mod tensorboard;
pub mod train;
