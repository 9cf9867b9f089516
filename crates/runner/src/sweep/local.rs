//! Running a sweep's trials on this machine: one trial in this process (what a local child
//! and a Slurm array task do), and every unfinished trial as `caplab sweep DIR --trial I`
//! child processes, N at a time, each logging to `logs/<trial>.log`, the manifest rewritten as
//! their states change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::plan::{Status, Sweep, Trial};
use crate::run::{self, RunOptions};

impl Sweep {
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
        self.ensure_data()?;
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
}
