//! `caplab sweep`: one spec, many trials — seeds × a grid (and zipped lists) over spec keys —
//! run on this machine (N at a time) or as a Slurm job array.
//!
//! A sweep lives in `<runs_dir>/<experiment>/sweep-<hash>/`, the hash taken over the resolved
//! spec (with its `[sweep]` section and seeds), so re-running the same command finds the same
//! directory: finished trials are skipped and interrupted ones resumed (`caplab resume`'s
//! guarantees). The directory holds:
//!
//! * `sweep.toml`: the resolved spec the trials derive from (read back exactly by trial tasks);
//! * `manifest.json`: trial → overrides → run directory → status;
//! * one run directory per trial, named after its overrides (`003-train.lr=0.002,seed=2`);
//! * `logs/<trial>.log` (local trials) or `slurm/<job>_<task>.out` (array tasks);
//! * `sweep.sbatch` with `--slurm`: one array task per trial, each running
//!   `caplab sweep SWEEP_DIR --trial $SLURM_ARRAY_TASK_ID`.
//!
//! Every trial's spec is built and validated before the first trial starts.
//!
//! - [`plan`]: the trials of a spec's `[sweep]` section ([`crate::spec::SweepSpec`]) and seeds,
//!   the sweep directory, `manifest.json` and each trial's state;
//! - [`local`]: a trial in this process, and every pending trial as child processes here;
//! - [`slurm`]: the array job script and its submission.
//!
//! Dependencies point one way: `local` and `slurm` use `plan`; `plan` uses neither.

pub mod local;
pub mod plan;
pub mod slurm;

pub use plan::{expand, status_table, Manifest, ManifestTrial, Status, Sweep, Trial};
pub use slurm::SlurmOptions;
