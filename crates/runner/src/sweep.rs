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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::run::{self, RunOptions};
use crate::spec::Spec;

/// The `[sweep]` section: which spec keys vary across trials.
///
/// ```toml
/// [sweep.grid]                       # every combination
/// "train.lr" = [1e-3, 2e-3]
/// "model.decoder.cell" = ["lstm", "gru"]
/// [sweep.zip]                        # taken together, position by position
/// "model.decoder.hidden_dim" = [256, 512]
/// "model.decoder.embed_dim" = [128, 256]
/// ```
///
/// Trials = zip positions × grid combinations × `experiment.seeds`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Keys whose values are crossed with each other.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Keys whose lists (all of one length) are taken position by position, crossed with the grid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zip: BTreeMap<String, Vec<toml::Value>>,
}

/// Keys a sweep may not vary: they place or identify the sweep itself.
const FIXED_KEYS: [&str; 4] = [
    "experiment.seed",
    "experiment.seeds",
    "experiment.name",
    "experiment.runs_dir",
];

/// One trial: the overrides it applies to the sweep's spec, and its seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Position in the sweep (the Slurm array index).
    pub index: usize,
    /// Directory name: index and overrides, e.g. `001-model.decoder.cell=gru,seed=2`.
    pub name: String,
    /// Spec key → value (as TOML) this trial sets.
    pub overrides: BTreeMap<String, toml::Value>,
    /// `experiment.seed` of this trial.
    pub seed: u64,
}

impl Trial {
    /// The `--set` items that turn the sweep's spec into this trial's.
    pub fn sets(&self) -> Vec<String> {
        let mut sets: Vec<String> = self
            .overrides
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        sets.push(format!("experiment.seed={}", self.seed));
        sets
    }
}

/// A trial's state, read from its run directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started.
    Pending,
    /// Started by this sweep process and not yet done.
    Running,
    /// Started before but neither finished nor running here (killed, preempted, or running
    /// elsewhere, e.g. as a Slurm task): the next `caplab sweep` resumes it.
    Interrupted,
    /// Its last attempt exited with an error (see its log).
    Failed,
    /// `report.json` written.
    Finished,
}

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The sweep directory's name.
    pub sweep_id: String,
    /// The spec file the sweep was made from (as given).
    pub spec: String,
    /// Every trial with its run directory (relative to the sweep directory) and status.
    pub trials: Vec<ManifestTrial>,
    /// Slurm array job ids this sweep was submitted as, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slurm_jobs: Vec<String>,
}

/// One row of the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManifestTrial {
    /// Position in the sweep.
    pub index: usize,
    /// Run directory name.
    pub name: String,
    /// Spec key → value this trial sets.
    pub overrides: BTreeMap<String, toml::Value>,
    /// Its seed.
    pub seed: u64,
    /// Run directory, relative to the sweep directory.
    pub run_dir: String,
    /// State when the manifest was written.
    pub status: Status,
}

/// A prepared sweep: its directory, its spec and its trials.
#[derive(Debug)]
pub struct Sweep {
    /// `<runs_dir>/<experiment>/sweep-<hash>`.
    pub dir: PathBuf,
    /// The resolved spec the trials derive from (with `[sweep]` and seeds).
    pub spec: Spec,
    /// Every trial, in array order.
    pub trials: Vec<Trial>,
    /// Each trial's validated spec (same order).
    pub specs: Vec<Spec>,
}

/// How to run a sweep's pending trials.
#[derive(Clone, Debug)]
pub enum Launch {
    /// On this machine, `jobs` trials at a time, each a `caplab` child process.
    Local {
        /// Trials at once.
        jobs: usize,
    },
    /// As a Slurm job array.
    Slurm(SlurmOptions),
}

/// `#SBATCH` settings of the array job.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (HH:MM:SS or D-HH:MM:SS).
    pub time: Option<String>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<u32>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// At most this many array tasks at once (`--array=0-N%K`).
    pub max_parallel: Option<usize>,
    /// Call `sbatch` (otherwise print how to).
    pub submit: bool,
}

/// Expands a spec's seeds × `[sweep]` into trials (no spec is built here).
pub fn expand(spec: &Spec) -> Result<Vec<Trial>> {
    let sweep = spec.sweep.clone().unwrap_or_default();
    for key in sweep.grid.keys().chain(sweep.zip.keys()) {
        if FIXED_KEYS.contains(&key.as_str()) || key.starts_with("sweep.") || key == "sweep" {
            let hint = if key.starts_with("experiment.seed") {
                " (list seeds in experiment.seeds)"
            } else {
                ""
            };
            bail!("invalid spec: key sweep.*.{key:?} cannot be swept{hint}");
        }
        if key.is_empty() || key.split('.').any(str::is_empty) {
            bail!(
                "invalid spec: key sweep.*.{key:?} is not a dotted spec key such as \"train.lr\""
            );
        }
    }
    if let Some(key) = sweep.grid.keys().find(|k| sweep.zip.contains_key(*k)) {
        bail!("invalid spec: key {key:?} is in both sweep.grid and sweep.zip");
    }
    for (section, map) in [("grid", &sweep.grid), ("zip", &sweep.zip)] {
        if let Some((key, _)) = map.iter().find(|(_, v)| v.is_empty()) {
            bail!("invalid spec: key sweep.{section}.{key:?} must list at least one value");
        }
    }
    let zip_len = sweep.zip.values().map(Vec::len).collect::<BTreeSet<_>>();
    if zip_len.len() > 1 {
        let lens: Vec<String> = sweep
            .zip
            .iter()
            .map(|(k, v)| format!("{k:?} has {}", v.len()))
            .collect();
        bail!(
            "invalid spec: the lists in sweep.zip must have one length ({})",
            lens.join(", ")
        );
    }
    let zip_positions = zip_len.into_iter().next().unwrap_or(1);
    let seeds = if spec.experiment.seeds.is_empty() {
        vec![spec.experiment.seed]
    } else {
        let mut seen = BTreeSet::new();
        if let Some(s) = spec.experiment.seeds.iter().find(|s| !seen.insert(**s)) {
            bail!("invalid spec: key experiment.seeds lists seed {s} twice");
        }
        spec.experiment.seeds.clone()
    };
    // The grid's combinations, first key slowest.
    let mut combos: Vec<BTreeMap<String, toml::Value>> = vec![BTreeMap::new()];
    for (key, values) in &sweep.grid {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(key.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    let mut trials = Vec::new();
    for z in 0..zip_positions {
        for combo in &combos {
            for &seed in &seeds {
                let mut overrides = combo.clone();
                for (key, values) in &sweep.zip {
                    overrides.insert(key.clone(), values[z].clone());
                }
                let index = trials.len();
                trials.push(Trial {
                    index,
                    name: trial_name(index, &overrides, seed),
                    overrides,
                    seed,
                });
            }
        }
    }
    Ok(trials)
}

/// `007-model.decoder.cell=gru,train.lr=0.002,seed=3`, with characters that do not belong in
/// a file name replaced by `_`.
fn trial_name(index: usize, overrides: &BTreeMap<String, toml::Value>, seed: u64) -> String {
    let mut parts: Vec<String> = overrides
        .iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect();
    parts.push(format!("seed={seed}"));
    let clean: String = parts
        .join(",")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Keep names well under file-system limits; the index keeps them unique.
    let clean: String = clean.chars().take(180).collect();
    format!("{index:03}-{clean}")
}

impl Sweep {
    /// Builds the sweep a resolved spec describes: every trial's spec is made and validated
    /// here, so a bad value in the last trial fails before the first starts. Nothing is written.
    pub fn plan(spec: &Spec) -> Result<Sweep> {
        let trials = expand(spec)?;
        let mut base = spec.clone();
        base.sweep = None;
        base.experiment.seeds.clear();
        let specs = trials
            .iter()
            .map(|t| {
                base.with_overrides(&t.sets(), &format!("(sweep trial {})", t.name))
                    .with_context(|| format!("sweep trial {} ({})", t.index, t.sets().join(" ")))
            })
            .collect::<Result<Vec<_>>>()?;
        let toml = spec.to_toml()?;
        let hash = {
            use sha2::{Digest, Sha256};
            let d = Sha256::digest(toml.as_bytes());
            d.iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let dir = spec
            .experiment
            .runs_dir
            .join(&spec.experiment.name)
            .join(format!("sweep-{hash}"));
        Ok(Sweep {
            dir,
            spec: spec.clone(),
            trials,
            specs,
        })
    }

    /// Opens the sweep in `dir` (its `sweep.toml`, read exactly as written).
    pub fn open(dir: &Path) -> Result<Sweep> {
        let path = dir.join("sweep.toml");
        let spec = crate::spec::load_exact(&path)
            .with_context(|| format!("{} is not a sweep directory", dir.display()))?;
        let mut sweep = Sweep::plan(&spec)?;
        sweep.dir = dir.to_path_buf();
        Ok(sweep)
    }

    /// Creates the directory with `sweep.toml` (or checks that an existing one holds the same
    /// spec) and writes the manifest.
    pub fn create(&self, spec_origin: &str) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let toml = self.spec.to_toml()?;
        let path = self.dir.join("sweep.toml");
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == toml => {}
            Ok(_) => bail!(
                "{} holds another sweep's spec; it is not overwritten",
                path.display()
            ),
            Err(_) => write_atomic(&path, toml.as_bytes())?,
        }
        let previous = self.manifest().ok();
        self.write_manifest(
            spec_origin,
            &BTreeMap::new(),
            previous.map(|m| m.slurm_jobs).unwrap_or_default(),
        )
    }

    /// A trial's run directory.
    pub fn run_dir(&self, trial: &Trial) -> PathBuf {
        self.dir.join(&trial.name)
    }

    /// A trial's state from its run directory; `live` overrides it for trials this process runs
    /// or saw fail.
    pub fn status(&self, trial: &Trial, live: &BTreeMap<usize, Status>) -> Status {
        let dir = self.run_dir(trial);
        if dir.join("report.json").is_file() {
            Status::Finished
        } else if let Some(s) = live.get(&trial.index) {
            *s
        } else if dir.join("spec.toml").is_file() {
            Status::Interrupted
        } else {
            Status::Pending
        }
    }

    /// The manifest on disk.
    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn write_manifest(
        &self,
        spec_origin: &str,
        live: &BTreeMap<usize, Status>,
        slurm_jobs: Vec<String>,
    ) -> Result<()> {
        let manifest = Manifest {
            sweep_id: self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            spec: spec_origin.to_string(),
            trials: self
                .trials
                .iter()
                .map(|t| ManifestTrial {
                    index: t.index,
                    name: t.name.clone(),
                    overrides: t.overrides.clone(),
                    seed: t.seed,
                    run_dir: t.name.clone(),
                    status: self.status(t, live),
                })
                .collect(),
            slurm_jobs,
        };
        write_atomic(
            &self.dir.join("manifest.json"),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )
    }

    /// Runs (or resumes, or skips when finished) trial `index` in this process: what a local
    /// child and a Slurm array task do.
    pub fn run_trial(&self, index: usize, opts: &RunOptions) -> Result<PathBuf> {
        let trial = self.trials.get(index).with_context(|| {
            format!(
                "--trial {index}: the sweep has {} trials (0..={})",
                self.trials.len(),
                self.trials.len().saturating_sub(1)
            )
        })?;
        let dir = self.run_dir(trial);
        match self.status(trial, &BTreeMap::new()) {
            Status::Finished => {
                tracing::info!("trial {} already finished", trial.name);
                Ok(dir)
            }
            Status::Interrupted => run::resume(&dir, opts),
            _ => run::run_into(&self.specs[index], &dir, opts),
        }
    }

    /// Runs every trial that has not finished on this machine, `jobs` at a time, each as a
    /// `caplab sweep DIR --trial I` child process of `exe` logging to `logs/<trial>.log`.
    /// Returns the states this process saw (failed trials among them).
    pub fn run_local(
        &self,
        exe: &Path,
        jobs: usize,
        spec_origin: &str,
        quiet: bool,
    ) -> Result<BTreeMap<usize, Status>> {
        let jobs = jobs.max(1);
        // A built-in dataset is generated once, here, not by racing children.
        for spec in &self.specs {
            crate::prepare::ensure_synth(&spec.data)?;
        }
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let mut live: BTreeMap<usize, Status> = BTreeMap::new();
        let todo: Vec<&Trial> = self
            .trials
            .iter()
            .filter(|t| self.status(t, &live) != Status::Finished)
            .collect();
        let skipped = self.trials.len() - todo.len();
        if skipped > 0 {
            tracing::info!("{skipped} of {} trials already finished", self.trials.len());
        }
        let bar = crate::progress::bar(todo.len() as u64, "trials", quiet);
        // Each child gets its share of the cores unless the user chose thread counts.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .div_ceil(jobs)
            .max(1);
        let mut queue = todo.into_iter();
        let mut running: Vec<(usize, Child)> = Vec::new();
        let (mut done, mut failed) = (0usize, 0usize);
        let message = |running: usize, done: usize, failed: usize| {
            format!("{done} done, {running} running, {failed} failed")
        };
        loop {
            while running.len() < jobs {
                let Some(trial) = queue.next() else { break };
                let log_path = logs.join(format!("{}.log", trial.name));
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log_path)
                    .with_context(|| format!("opening {}", log_path.display()))?;
                let err = log
                    .try_clone()
                    .with_context(|| format!("opening {}", log_path.display()))?;
                let mut cmd = Command::new(exe);
                cmd.arg("--quiet")
                    .arg("sweep")
                    .arg(&self.dir)
                    .arg("--trial")
                    .arg(trial.index.to_string())
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err);
                if std::env::var_os("RAYON_NUM_THREADS").is_none() {
                    cmd.env("RAYON_NUM_THREADS", threads.to_string());
                }
                let child = cmd
                    .spawn()
                    .with_context(|| format!("starting {}", exe.display()))?;
                tracing::info!("trial {} started (log {})", trial.name, log_path.display());
                live.insert(trial.index, Status::Running);
                running.push((trial.index, child));
                self.write_manifest(spec_origin, &live, self.slurm_jobs())?;
            }
            bar.set_message(message(running.len(), done, failed));
            if running.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            let mut still = Vec::with_capacity(running.len());
            let mut changed = false;
            for (index, mut child) in running {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        changed = true;
                        bar.inc(1);
                        let name = &self.trials[index].name;
                        if status.success() {
                            done += 1;
                            live.remove(&index);
                            tracing::info!("trial {name} finished");
                        } else {
                            failed += 1;
                            live.insert(index, Status::Failed);
                            tracing::error!(
                                "trial {name} failed ({status}); log: {}",
                                logs.join(format!("{name}.log")).display()
                            );
                        }
                    }
                    Ok(None) => still.push((index, child)),
                    Err(e) => bail!("waiting for trial {index}: {e}"),
                }
            }
            running = still;
            if changed {
                self.write_manifest(spec_origin, &live, self.slurm_jobs())?;
            }
        }
        bar.finish_with_message(message(0, done, failed));
        Ok(live)
    }

    fn slurm_jobs(&self) -> Vec<String> {
        self.manifest().map(|m| m.slurm_jobs).unwrap_or_default()
    }

    /// Writes `sweep.sbatch` (one array task per trial) and, with `submit`, submits it.
    /// Returns the script's path and the job id when submitted.
    pub fn slurm(
        &self,
        exe: &Path,
        opts: &SlurmOptions,
        spec_origin: &str,
    ) -> Result<(PathBuf, Option<String>)> {
        let abs = |p: &Path| -> Result<PathBuf> {
            std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
        };
        let dir = abs(&self.dir)?;
        let exe = abs(exe)?;
        // Array tasks start together: a built-in dataset is generated once, before them.
        for spec in &self.specs {
            crate::prepare::ensure_synth(&spec.data)?;
        }
        let cwd = std::env::current_dir().context("reading the working directory")?;
        let logs = dir.join("slurm");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let script = sbatch_script(
            &self.spec.experiment.name,
            self.trials.len(),
            &dir,
            &exe,
            &cwd,
            opts,
        )?;
        let path = dir.join("sweep.sbatch");
        write_atomic(&path, script.as_bytes())?;
        if !opts.submit {
            return Ok((path, None));
        }
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(&path)
            .output()
            .context("running sbatch (is Slurm installed and on PATH?)")?;
        if !out.status.success() {
            bail!(
                "sbatch {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let job = stdout
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if job.is_empty() {
            bail!("sbatch printed no job id");
        }
        let mut jobs = self.slurm_jobs();
        jobs.push(job.clone());
        self.write_manifest(spec_origin, &BTreeMap::new(), jobs)?;
        Ok((path, Some(job)))
    }
}

/// The array job script: one task per trial; each task runs or resumes its trial, so a
/// re-submitted array (after a preemption or a time limit) continues where it stopped.
fn sbatch_script(
    name: &str,
    trials: usize,
    dir: &Path,
    exe: &Path,
    cwd: &Path,
    opts: &SlurmOptions,
) -> Result<String> {
    let quote = |p: &Path| -> Result<String> {
        let s = p
            .to_str()
            .with_context(|| format!("{} is not valid UTF-8", p.display()))?;
        Ok(format!("'{}'", s.replace('\'', r"'\''")))
    };
    if trials == 0 {
        bail!("the sweep has no trials");
    }
    let mut array = format!("0-{}", trials - 1);
    if let Some(k) = opts.max_parallel {
        if k == 0 {
            bail!("--max-parallel must be ≥ 1");
        }
        array.push_str(&format!("%{k}"));
    }
    if let Some(t) = &opts.time {
        let ok = t
            .split(['-', ':'])
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            bail!("--time {t:?}: expected HH:MM:SS, MM:SS or D-HH:MM:SS");
        }
    }
    let slurm_dir = dir.join("slurm");
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=caplab-{name}\n"));
    s.push_str(&format!("#SBATCH --array={array}\n"));
    s.push_str(&format!(
        "#SBATCH --output={}/%A_%a.out\n",
        slurm_dir.display()
    ));
    s.push_str("#SBATCH --ntasks=1\n");
    s.push_str("#SBATCH --requeue\n");
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(g) = opts.gpus_per_task {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    if let Some(c) = opts.cpus_per_task {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    s.push_str(&format!(
        "# Written by `caplab sweep --slurm`: task i runs (or resumes) trial i of {}.\n",
        dir.display()
    ));
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd {}\n", quote(cwd)?));
    s.push_str("if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi\n");
    s.push_str(&format!(
        "exec {} --quiet sweep {} --trial \"$SLURM_ARRAY_TASK_ID\"\n",
        quote(exe)?,
        quote(dir)?
    ));
    Ok(s)
}

/// The status table of a sweep: one line per trial; `live` as in [`Sweep::status`].
pub fn status_table(sweep: &Sweep, live: &BTreeMap<usize, Status>) -> String {
    let mut out = String::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &sweep.trials {
        let status = sweep.status(t, live);
        let label = format!("{status:?}").to_lowercase();
        *counts.entry(label.clone()).or_default() += 1;
        out.push_str(&format!("{:>4}  {:<11}  {}\n", t.index, label, t.name));
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out.push_str(&format!(
        "{} trials in {}: {}\n",
        sweep.trials.len(),
        sweep.dir.display(),
        summary.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        let base = "[experiment]\nname = \"t\"\nseeds = [1, 2]\n\n[data]\nkind = \"synth\"\nroot = \"shapes\"\n\n[model.encoder]\narch = \"resnet_tiny\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.toml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        crate::spec::load(&path, &[]).unwrap()
    }

    #[test]
    fn trials_are_zip_times_grid_times_seeds_in_a_fixed_order() {
        let s = spec(
            "[sweep.grid]\n\"train.lr\" = [1e-3, 2e-3]\n\"model.decoder.cell\" = [\"lstm\", \"gru\"]\n[sweep.zip]\n\"model.decoder.hidden_dim\" = [16, 32]\n\"model.decoder.embed_dim\" = [8, 12]\n",
        );
        let sweep = Sweep::plan(&s).unwrap();
        assert_eq!(sweep.trials.len(), 2 * 2 * 2 * 2);
        let t = &sweep.trials[0];
        assert_eq!(
            t.name,
            "000-model.decoder.cell=lstm,model.decoder.embed_dim=8,model.decoder.hidden_dim=16,train.lr=0.001,seed=1"
        );
        let last = &sweep.trials[15];
        assert_eq!(last.seed, 2);
        assert_eq!(
            last.overrides["model.decoder.hidden_dim"].as_integer(),
            Some(32)
        );
        assert_eq!(
            last.overrides["model.decoder.embed_dim"].as_integer(),
            Some(12)
        );
        // Each trial's spec carries its values, its seed, and no sweep section.
        for (trial, spec) in sweep.trials.iter().zip(&sweep.specs) {
            assert_eq!(spec.experiment.seed, trial.seed);
            assert!(spec.sweep.is_none() && spec.experiment.seeds.is_empty());
            let leaves = spec.leaves().unwrap();
            for (k, v) in &trial.overrides {
                assert_eq!(&leaves[k], v, "{k} in {}", trial.name);
            }
        }
        // Same spec, same directory.
        assert_eq!(Sweep::plan(&s).unwrap().dir, sweep.dir);
    }

    #[test]
    fn a_bad_value_in_a_late_trial_fails_before_any_trial_runs() {
        let s = spec("[sweep.grid]\n\"model.decoder.hidden_dim\" = [16, 32, 0]\n");
        let err = format!("{:#}", Sweep::plan(&s).unwrap_err());
        assert!(err.contains("sweep trial 4"), "{err}");
        assert!(
            err.contains("model.decoder.hidden_dim must be an integer ≥ 1, got 0"),
            "{err}"
        );
        let s = spec("[sweep.grid]\n\"train.lrr\" = [1]\n");
        let err = format!("{:#}", Sweep::plan(&s).unwrap_err());
        assert!(err.contains("lrr"), "{err}");
        let s = spec("[sweep.zip]\n\"train.lr\" = [1e-3]\n\"train.epochs\" = [1, 2]\n");
        let err = format!("{:#}", Sweep::plan(&s).unwrap_err());
        assert!(err.contains("one length"), "{err}");
        let s = spec("[sweep.grid]\n\"experiment.seed\" = [1, 2]\n");
        let err = format!("{:#}", Sweep::plan(&s).unwrap_err());
        assert!(err.contains("experiment.seeds"), "{err}");
    }

    #[test]
    fn the_sbatch_script_has_one_array_task_per_trial() {
        let opts = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("01:30:00".into()),
            gpus_per_task: Some(1),
            cpus_per_task: Some(8),
            max_parallel: Some(2),
            submit: false,
        };
        let s = sbatch_script(
            "abl",
            4,
            Path::new("/r/abl/sweep-1"),
            Path::new("/bin/caplab"),
            Path::new("/w"),
            &opts,
        )
        .unwrap();
        for line in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --output=/r/abl/sweep-1/slurm/%A_%a.out",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=01:30:00",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --cpus-per-task=8",
            "cd '/w'",
            "exec '/bin/caplab' --quiet sweep '/r/abl/sweep-1' --trial \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
        let bad = SlurmOptions {
            time: Some("1h".into()),
            ..Default::default()
        };
        assert!(sbatch_script(
            "a",
            1,
            Path::new("/d"),
            Path::new("/c"),
            Path::new("/w"),
            &bad
        )
        .is_err());
    }
}
