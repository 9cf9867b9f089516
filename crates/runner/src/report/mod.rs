//! The report of a run or an evaluation: `report.json` ([`contents`]), `report.md`
//! ([`markdown`]) and `report.html` ([`page`]), written together by [`write`], the one place
//! that writes them (`caplab run` and `caplab eval` both call it). Several runs are compared by
//! [`crate::compare`].

use std::path::Path;

use anyhow::Result;

use crate::fsutil::write_atomic;
use crate::history::EpochRecord;

pub mod contents;
pub mod markdown;
pub mod page;

pub use contents::*;
pub use page::GalleryItem;

/// Writes `report.json`, `report.md` and `report.html` into `dir`, each atomically; returns
/// the Markdown (TensorBoard shows it as text).
pub fn write(
    dir: &Path,
    report: &Report,
    epochs: &[EpochRecord],
    gallery: &[GalleryItem],
) -> Result<String> {
    write_atomic(
        &dir.join("report.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    let markdown = report.to_markdown();
    write_atomic(&dir.join("report.md"), markdown.as_bytes())?;
    let html = page::page(report, epochs, gallery);
    write_atomic(&dir.join("report.html"), html.as_bytes())?;
    Ok(markdown)
}
