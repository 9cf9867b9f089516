//! What the CLI test binaries share: running `caplab`, the tiny spec, reading run directories,
//! killing a run at a chosen moment.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The caplab binary under test: cargo's, or `CAPLAB_TEST_BIN` (a test binary carried to a
/// machine without the build tree, as scripts/gpu/check.sh does).
pub fn bin() -> PathBuf {
    std::env::var_os("CAPLAB_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_caplab")))
}

pub fn caplab(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .env_remove("CAPLAB_LOG")
        .args(args)
        .output()
        .expect("the caplab binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

pub const TINY_SPEC: &str = r#"
[experiment]
name = "tiny"
seed = 3
device = "cpu"
runs_dir = "runs"

[data]
kind = "synth"
root = "shapes"

[data.synth]
images = 48
size = 64
seed = 5
val_fraction = 0.25
test_fraction = 0.25

[preprocess]
image_size = 32

[model.encoder]
arch = "resnet_tiny"

[model.decoder]
embed_dim = 32
hidden_dim = 48

[train]
epochs = 3
batch_size = 8
lr = 5e-3

[eval]
batch_size = 16
samples = 3

[eval.search]
method = "beam"
beam_size = 2
max_len = 12
"#;

pub fn run_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

pub fn report_of(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).expect("read"))
        .expect("report.json")
}

/// The parts of a finished run that must not depend on interruptions: the report's test
/// metrics, epoch table (learning rates included), best epoch, samples and diagnostics, and the
/// test captions.
pub fn outcome(run: &Path) -> (serde_json::Value, String) {
    let r = report_of(run);
    let keep = [
        "test",
        "epochs",
        "best_epoch",
        "cider_over_blind",
        "samples",
        "diagnostics",
        "vocab_size",
        "split_sizes",
    ];
    let kept: serde_json::Map<String, serde_json::Value> = keep
        .iter()
        .map(|k| (k.to_string(), r[*k].clone()))
        .collect();
    let captions = std::fs::read_to_string(run.join("captions.json")).expect("captions.json");
    (serde_json::Value::Object(kept), captions)
}

pub fn history_lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join("history.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Starts `caplab run`, waits until `ready(run_dir)` holds, then kills the process with SIGKILL.
/// Returns the run directory it left.
pub fn run_and_kill(dir: &Path, args: &[&str], ready: &dyn Fn(&Path) -> bool) -> PathBuf {
    let before = run_dirs(&dir.join("runs/tiny"));
    let mut child = Command::new(bin())
        .current_dir(dir)
        .env_remove("CAPLAB_LOG")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("caplab starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let run = loop {
        let new: Vec<PathBuf> = run_dirs(&dir.join("runs/tiny"))
            .into_iter()
            .filter(|d| !before.contains(d))
            .collect();
        if let Some(run) = new.first() {
            if ready(run) {
                break run.clone();
            }
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before the moment to kill it"
        );
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(
        !run.join("report.json").exists(),
        "killed before the report was written"
    );
    // Nothing half-written under a final name: the history parses line by line.
    if let Ok(text) = std::fs::read_to_string(run.join("history.jsonl")) {
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("whole history lines");
        }
    }
    run
}
