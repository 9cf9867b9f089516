//! Small filesystem helpers: atomic file writes and reading files with path-naming errors.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::DataError;

/// A suffix unique within this machine's running processes: `<pid>-<counter>`.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to `path` atomically, so a crash leaves either the old file or the new one.
///
/// The one implementation used across the workspace: a temporary file in the same directory
/// with a unique name (`.<name>.tmp-<pid>-<counter>`, see [`unique_suffix`]) is written and
/// fsynced, renamed over `path`, and the directory is fsynced so the rename is durable. Missing
/// parent directories are created; on error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let tmp = parent.join(format!(".{name}.tmp-{}", unique_suffix()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| DataError::io(&tmp, e))?;
        f.sync_all().map_err(|e| DataError::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))?;
        sync_dir(path).map_err(|e| DataError::io(&parent, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs the directory holding `path`, making a rename into it durable (a no-op off Unix).
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Reads a whole file as UTF-8 text; the error names the file.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    fs::read_to_string(path).map_err(|e| DataError::io(path, e))
}

/// Reads and parses a JSON file into a `serde_json::Value`; the error names the file, line and column.
pub fn read_json_value(path: &Path) -> Result<serde_json::Value, DataError> {
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_json_value(path, &bytes)
}

/// Parses JSON bytes read from `path` into a `serde_json::Value`; the error names the file,
/// line and column. (Parsing a slice is several times faster than a buffered reader.)
pub fn parse_json_value(path: &Path, bytes: &[u8]) -> Result<serde_json::Value, DataError> {
    serde_json::from_slice(bytes).map_err(|e| DataError::parse(path, format!("invalid JSON: {e}")))
}
