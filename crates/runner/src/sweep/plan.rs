//! A sweep's plan and state: the trials a spec's seeds × `[sweep]` section
//! ([`crate::spec::SweepSpec`]) expand to, the sweep directory (`sweep.toml`), its
//! `manifest.json`, each trial's state read from its run directory, and the status table.
//! Nothing here starts a trial: [`super::local`] and [`super::slurm`] do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::spec::{Spec, SweepSpec};

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

impl Status {
    /// The state's name, as `manifest.json` and the status table write it (`finished`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
            Status::Finished => "finished",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

/// Expands a spec's seeds × `[sweep]` into trials (no spec is built here).
pub fn expand(spec: &Spec) -> Result<Vec<Trial>> {
    let sweep: SweepSpec = spec.sweep.clone().unwrap_or_default();
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

    /// Writes `manifest.json`: every trial with its state (`live` as in [`Sweep::status`]) and
    /// the Slurm jobs the sweep was submitted as.
    pub(super) fn write_manifest(
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

    /// The Slurm array jobs the manifest on disk lists (none when it cannot be read).
    pub(super) fn slurm_jobs(&self) -> Vec<String> {
        self.manifest().map(|m| m.slurm_jobs).unwrap_or_default()
    }

    /// Generates every trial's built-in dataset, once, before trials that would race to write
    /// it start together.
    pub(super) fn ensure_data(&self) -> Result<()> {
        for spec in &self.specs {
            crate::prepare::ensure_synth(&spec.data)?;
        }
        Ok(())
    }
}

/// The status table of a sweep: one line per trial; `live` as in [`Sweep::status`].
pub fn status_table(sweep: &Sweep, live: &BTreeMap<usize, Status>) -> String {
    let mut out = String::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &sweep.trials {
        let status = sweep.status(t, live);
        let label = status.name().to_string();
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
    fn create_writes_a_manifest_and_states_come_from_the_run_directories() {
        let runs = tempfile::tempdir().unwrap();
        let mut s = spec("[sweep.grid]\n\"train.lr\" = [1e-3, 2e-3]\n");
        s.experiment.runs_dir = runs.path().to_path_buf();
        let sweep = Sweep::plan(&s).unwrap();
        assert!(sweep.dir.starts_with(runs.path().join("t")));
        sweep.create("spec.toml").unwrap();
        let m = sweep.manifest().unwrap();
        assert_eq!(m.spec, "spec.toml");
        assert_eq!(m.trials.len(), 4);
        assert!(m
            .trials
            .iter()
            .all(|t| t.status == Status::Pending && t.run_dir == t.name));
        // A finished trial has report.json; a started one only spec.toml.
        let (t0, t1) = (&sweep.trials[0], &sweep.trials[1]);
        std::fs::create_dir_all(sweep.run_dir(t0)).unwrap();
        std::fs::write(sweep.run_dir(t0).join("report.json"), "{}").unwrap();
        std::fs::create_dir_all(sweep.run_dir(t1)).unwrap();
        std::fs::write(sweep.run_dir(t1).join("spec.toml"), "").unwrap();
        let live = BTreeMap::from([(0, Status::Failed), (2, Status::Running)]);
        assert_eq!(
            sweep.status(t0, &live),
            Status::Finished,
            "report.json wins"
        );
        assert_eq!(sweep.status(t1, &live), Status::Interrupted);
        assert_eq!(sweep.status(&sweep.trials[2], &live), Status::Running);
        assert_eq!(sweep.status(&sweep.trials[3], &live), Status::Pending);
        let table = status_table(&sweep, &live);
        assert_eq!(table.lines().count(), 5, "{table}");
        assert!(
            table.starts_with("   0  finished     000-train.lr=0.001,seed=1\n"),
            "{table}"
        );
        assert!(
            table.ends_with(": 1 finished, 1 interrupted, 1 pending, 1 running\n"),
            "{table}"
        );
        // Re-creating keeps the directory; another spec in it is refused.
        sweep.create("spec.toml").unwrap();
        assert_eq!(sweep.manifest().unwrap().trials[0].status, Status::Finished);
        let mut other = s.clone();
        other.train.epochs += 1;
        let mut clash = Sweep::plan(&other).unwrap();
        clash.dir = sweep.dir.clone();
        let err = format!("{:#}", clash.create("other.toml").unwrap_err());
        assert!(err.contains("holds another sweep's spec"), "{err}");
        // The opened directory plans the same trials.
        let opened = Sweep::open(&sweep.dir).unwrap();
        assert_eq!(opened.trials, sweep.trials);
    }

    #[test]
    fn status_names_are_the_manifests() {
        for s in [
            Status::Pending,
            Status::Running,
            Status::Interrupted,
            Status::Failed,
            Status::Finished,
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }
}
