//! The crate's error type; every message names the file and, where it applies, the line or entry.

use std::path::{Path, PathBuf};

/// Errors raised while reading, writing or generating datasets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O operation on `path` failed. The OS error is part of the message, not the error
    /// source, so an error chain (`{:#}`) prints it once.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A record of an annotation file is malformed; `location` is e.g. `line 12` or `entry 3 (foo.jpg)`.
    #[error("{}: {location}: {message}", file.display())]
    Record {
        /// The annotation file.
        file: PathBuf,
        /// Line number or entry index (with the image file name when known).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A whole file could not be parsed (e.g. invalid JSON), with the parser's position.
    #[error("{}: {message}", file.display())]
    Parse {
        /// The file that failed to parse.
        file: PathBuf,
        /// The parser's message, including line and column when available.
        message: String,
    },
    /// An image file could not be decoded or encoded.
    #[error("{}: cannot decode image: {message}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// An image is over the pixel budget (`preprocess.max_image_pixels`, `--max-image-pixels`):
    /// refused from its header, before decoding.
    #[error("{}: {}", path.display(), too_large(*width, *height, *max_pixels))]
    TooLarge {
        /// The image file.
        path: PathBuf,
        /// Its width in pixels (from the header).
        width: u32,
        /// Its height in pixels (from the header).
        height: u32,
        /// The budget it exceeds, in pixels.
        max_pixels: u64,
    },
    /// The dataset root directory does not exist.
    #[error(
        "dataset root {} does not exist; generate the built-in dataset with \
         `caplab data synth --out {}` or see the \"Datasets\" section of README.md \
         for downloading Flickr8k / COCO",
        root.display(),
        root.display()
    )]
    MissingRoot {
        /// The configured root.
        root: PathBuf,
    },
    /// The output directory of a generator already exists and is not empty.
    #[error("{} already exists and is not empty; refusing to overwrite it (choose another --out or delete it)", path.display())]
    OutputExists {
        /// The output directory.
        path: PathBuf,
    },
    /// Several problems found while loading a dataset, each naming its file and line or entry
    /// (see [`crate::check`]); the message lists the first [`Self::MAX_LISTED`] of them.
    #[error("{}", list_problems(.0))]
    Problems(Vec<DataError>),
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A spec value is out of range: the key (relative to the validated struct, e.g. `size`) and
    /// what it allows. Callers that know where the struct sits in a spec name the full key.
    #[error("key {key} {message}")]
    Invalid {
        /// The offending key.
        key: String,
        /// What the key allows (and what it got).
        message: String,
    },
}

/// `40000 × 40000 = 1600.0 megapixels, over the limit of 100.0 (…)`; in pixels when the limit
/// is under 0.1 megapixels.
fn too_large(width: u32, height: u32, max_pixels: u64) -> String {
    let pixels = u64::from(width) * u64::from(height);
    let (size, limit) = if max_pixels >= 100_000 {
        (
            format!("{:.1} megapixels", pixels as f64 / 1e6),
            format!("{:.1}", max_pixels as f64 / 1e6),
        )
    } else {
        (format!("{pixels} pixels"), format!("{max_pixels} pixels"))
    };
    format!(
        "{width} × {height} = {size}, over the limit of {limit} \
         (preprocess.max_image_pixels / --max-image-pixels)"
    )
}

fn list_problems(problems: &[DataError]) -> String {
    let mut out = format!("{} problems in the dataset:", problems.len());
    for p in problems.iter().take(DataError::MAX_LISTED) {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    if problems.len() > DataError::MAX_LISTED {
        out.push_str(&format!(
            "\n  … and {} more (`caplab data check SPEC` lists them all)",
            problems.len() - DataError::MAX_LISTED
        ));
    }
    out
}

impl DataError {
    /// How many problems the message of [`DataError::Problems`] lists.
    pub const MAX_LISTED: usize = 20;

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.as_ref().to_path_buf(),
            error: source,
        }
    }

    /// Builds a record error for `file` at `location`.
    pub fn record(
        file: impl AsRef<Path>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DataError::Record {
            file: file.as_ref().to_path_buf(),
            location: location.into(),
            message: message.into(),
        }
    }

    /// Builds a whole-file parse error for `file`.
    pub fn parse(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        DataError::Parse {
            file: file.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// The OS error appears once in the message and is not repeated as the error's source (an
    /// `anyhow` chain printed with `{:#}` walks the sources and would print it twice).
    #[test]
    fn io_errors_name_the_path_and_the_os_error_once() {
        let os = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = os.to_string();
        let e = DataError::io("data/x/captions.txt", os);
        let message = e.to_string();
        assert_eq!(message, format!("data/x/captions.txt: {text}"));
        assert!(e.source().is_none());
    }
}
