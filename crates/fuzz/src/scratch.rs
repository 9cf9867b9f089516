//! Scratch files for targets whose parser takes a path: one directory per process and thread
//! under the OS temp dir, one sub-directory per target, files overwritten on every input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The process's scratch root (`$TMPDIR/caplab-fuzz-XXXXXX`), created on first use.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("caplab-fuzz-")
            .tempdir()
            .expect("cannot create the fuzz scratch directory in the OS temp dir")
            .keep()
    })
}

thread_local! {
    static THREAD_DIR: PathBuf = {
        let dir = root().join(format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create scratch directory {}: {e}", dir.display()));
        dir
    };
}

/// This thread's scratch directory (targets use sub-directories of it).
pub fn thread_dir() -> PathBuf {
    THREAD_DIR.with(PathBuf::clone)
}

/// This thread's scratch directory for `target` (created if needed).
pub fn dir(target: &str) -> PathBuf {
    let dir = thread_dir().join(target);
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create scratch directory {}: {e}", dir.display()));
    }
    dir
}

/// Writes `bytes` to `name` in this thread's scratch directory for `target`; returns its path.
pub fn file(target: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir(target).join(name);
    std::fs::write(&path, bytes)
        .unwrap_or_else(|e| panic!("cannot write scratch file {}: {e}", path.display()));
    path
}

/// Removes the scratch root (the end of a fuzz run); errors are ignored.
pub fn remove_all() {
    let _ = std::fs::remove_dir_all(root());
}
