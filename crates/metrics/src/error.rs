//! Errors of the metrics crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading inputs or scoring.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A candidate's image id has no reference captions.
    #[error("candidate for image id {0:?} has no reference captions")]
    UnknownImage(String),
    /// A reference image id has no candidate caption.
    #[error("image id {0:?} has references but no candidate caption")]
    MissingCandidate(String),
    /// Nothing to score.
    #[error("no images to score")]
    Empty,
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is malformed.
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the offending entry.
        msg: String,
    },
    /// METEOR resources missing or unreadable.
    #[error("METEOR resources: {0}")]
    Meteor(String),
    /// Two systems scored on different images.
    #[error("systems differ: {0}")]
    Mismatch(String),
}
