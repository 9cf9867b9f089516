//! Atomic file output (the data crate's one implementation) and run directories that are never reused.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically: [`caplab_data::fsutil::write_atomic`] (unique temporary
/// sibling, fsync, rename, directory fsync), with its path-naming error as an `anyhow` error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(caplab_data::fsutil::write_atomic(path, bytes)?)
}

/// Creates `runs_dir/<experiment>/<timestamp>-<id>/`; fails rather than reuse an existing one.
pub fn new_run_dir(runs_dir: &Path, experiment: &str, seed: u64) -> Result<PathBuf> {
    let parent = runs_dir.join(experiment);
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    for attempt in 0..100u64 {
        let id = short_id(seed, attempt);
        let dir = parent.join(format!("{stamp}-{id}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!(
        "could not create a fresh run directory under {}",
        parent.display()
    )
}

fn short_id(seed: u64, attempt: u64) -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{nanos}-{}-{seed}-{attempt}", std::process::id()));
    digest.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// The git commit of the repository holding `dir`, with `-dirty` when it has changes.
pub fn git_commit(dir: &Path) -> String {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty())
                .unwrap_or(false);
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        None => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn concurrent_atomic_writes_to_one_path_all_succeed_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::thread::scope(|s| {
            for i in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, format!("writer {i}").as_bytes()).unwrap();
                    }
                });
            }
        });
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("writer "), "{text}");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary files left behind");
    }
}
