//! A sweep as a Slurm job array: `sweep.sbatch` (one array task per trial, each running
//! `caplab sweep SWEEP_DIR --trial $SLURM_ARRAY_TASK_ID`, so a re-submitted array resumes
//! where it stopped), its `#SBATCH` settings, and its submission with `sbatch`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::plan::Sweep;
use crate::fsutil::write_atomic;

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

impl Sweep {
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
        self.ensure_data()?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
