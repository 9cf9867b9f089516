//! Training checkpoints: full-precision records written atomically with a checksum beside each,
//! the epochs a run directory holds and which of them verify, which one a command loads
//! (`best`, `last` or a number), and loading it.
//!
//! burn-train writes `checkpoint/{model,optim,scheduler}-<epoch>.mpk` through a file recorder.
//! [`CheckpointRecorder`] is burn's named-MessagePack format in full precision (burn's
//! `CompactRecorder` rounds weights and Adam moments to f16, so a resumed run would continue
//! from other numbers), written through [`write_record`]: the one atomic writer, then a sidecar
//! `<record>.sum` with its size and SHA-256. A record under its final name was whole when
//! written; [`verify_record`] tells whether it still is before anything loads it (a copy cut
//! short, a full quota, bit rot), and `caplab resume` falls back to the newest epoch whose
//! records all verify.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Recorder,
    RecorderError,
};
use burn::tensor::backend::Backend;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;
use crate::history::{History, Selection};
use crate::spec::{CheckpointChoice, Spec};

/// The three records of one training checkpoint.
pub const KINDS: [&str; 3] = ["model", "optim", "scheduler"];

/// burn's named MessagePack recorder in full precision, with atomic writes.
#[derive(Clone, Debug, Default)]
pub struct CheckpointRecorder {
    inner: NamedMpkFileRecorder<FullPrecisionSettings>,
}

impl<B: Backend> FileRecorder<B> for CheckpointRecorder {
    fn file_extension() -> &'static str {
        "mpk"
    }
}

impl<B: Backend> Recorder<B> for CheckpointRecorder {
    type Settings = FullPrecisionSettings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(
        &self,
        item: I,
        file: PathBuf,
    ) -> std::result::Result<(), RecorderError> {
        let bytes = <NamedMpkBytesRecorder<FullPrecisionSettings> as Recorder<B>>::save_item(
            &NamedMpkBytesRecorder::default(),
            item,
            (),
        )?;
        write_record(&file.with_extension("mpk"), &bytes)
            .map_err(|e| RecorderError::Unknown(format!("{e:#}")))
    }

    fn load_item<I: DeserializeOwned>(
        &self,
        file: &mut PathBuf,
    ) -> std::result::Result<I, RecorderError> {
        <NamedMpkFileRecorder<FullPrecisionSettings> as Recorder<B>>::load_item(&self.inner, file)
    }
}

/// What a record's sidecar (`model-3.mpk.sum`) says of it, written after the record.
#[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
struct RecordSum {
    /// Size of the record in bytes.
    bytes: u64,
    /// SHA-256 of the record, lowercase hex.
    sha256: String,
}

/// The sidecar of the record at `record`: `model-3.mpk` → `model-3.mpk.sum`.
pub fn sum_path(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_os_string();
    name.push(".sum");
    PathBuf::from(name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Writes one checkpoint record, then its size and SHA-256 beside it, each atomically: a record
/// under its final name is always whole when written, and its sidecar tells later whether it
/// still is.
pub fn write_record(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes)?;
    let sum = RecordSum {
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    };
    write_atomic(&sum_path(path), serde_json::to_string(&sum)?.as_bytes())
}

/// Checks the record at `path` against its sidecar. A record without a sidecar (written before
/// checkpoints had them) passes; a missing, truncated or altered record is an error naming it.
pub fn verify_record(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sum_file = sum_path(path);
    let Ok(text) = std::fs::read_to_string(&sum_file) else {
        return Ok(());
    };
    let sum: RecordSum = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a checkpoint checksum", sum_file.display()))?;
    if bytes.len() as u64 != sum.bytes {
        bail!(
            "{}: {} bytes, but {} were written (truncated or damaged)",
            path.display(),
            bytes.len(),
            sum.bytes
        );
    }
    if sha256_hex(&bytes) != sum.sha256 {
        bail!(
            "{}: its SHA-256 differs from the one written with it (damaged)",
            path.display()
        );
    }
    Ok(())
}

/// Checks the three records of `epoch` in `dir`; the error names the first bad file.
pub fn verify_epoch(dir: &Path, epoch: usize) -> Result<()> {
    for kind in KINDS {
        verify_record(&dir.join(format!("{kind}-{epoch}.mpk")))?;
    }
    Ok(())
}

/// The complete epochs of `dir` whose records all verify, and each complete epoch that does not
/// with the reason.
pub fn verified_epochs(dir: &Path) -> (BTreeSet<usize>, Vec<(usize, anyhow::Error)>) {
    let mut good = BTreeSet::new();
    let mut bad = Vec::new();
    for epoch in complete_epochs(dir) {
        match verify_epoch(dir, epoch) {
            Ok(()) => {
                good.insert(epoch);
            }
            Err(e) => bad.push((epoch, e)),
        }
    }
    (good, bad)
}

/// Epochs with all three checkpoint records in `dir`.
pub fn complete_epochs(dir: &Path) -> BTreeSet<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("model-")?
                .strip_suffix(".mpk")?
                .parse::<usize>()
                .ok()
        })
        .filter(|epoch| {
            KINDS
                .iter()
                .all(|k| dir.join(format!("{k}-{epoch}.mpk")).is_file())
        })
        .collect()
}

/// `model` with the weights of `run_dir`'s checkpoint of `epoch`, verified first; any failure,
/// a panic inside burn's decoder included, is an error naming the file.
pub fn load_model<B: Backend, M: Module<B>>(
    model: M,
    run_dir: &Path,
    epoch: usize,
    device: &B::Device,
) -> Result<M> {
    let path = run_dir.join("checkpoint").join(format!("model-{epoch}"));
    let file = path.with_extension("mpk");
    if !file.exists() {
        bail!(
            "checkpoint {} is missing; the run directory is damaged",
            file.display()
        );
    }
    verify_record(&file)?;
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        CheckpointRecorder::default()
            .load(path, device)
            .map(|record| model.load_record(record))
    }));
    match loaded {
        Ok(Ok(model)) => Ok(model),
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "loading checkpoint {}: {e}",
            file.display()
        )),
        Err(_) => bail!(
            "loading checkpoint {}: its records do not fit this model (damaged, or written by \
             another spec; a VGG under an attention or transformer decoder is built without fc6 \
             and fc7, and checkpoints that hold them, written by caplab before commit a09fb09, \
             do not load)",
            file.display()
        ),
    }
}

/// The epoch `choice` names in `run_dir` (whose history is `history`): the run's own best by
/// `train.select_metric`, its last, or a given one; its checkpoint must be on disk.
pub fn choose_epoch(
    spec: &Spec,
    run_dir: &Path,
    history: &History,
    choice: CheckpointChoice,
) -> Result<usize> {
    let sel = Selection::of(spec);
    let last = history.last_epoch();
    if last == 0 {
        bail!("the run has no finished epoch (empty history.jsonl)");
    }
    let epoch = match choice {
        CheckpointChoice::Best => history
            .best_epoch(&sel.metric, sel.lower_is_better)
            .unwrap_or(last),
        CheckpointChoice::Last => last,
        CheckpointChoice::Epoch(n) => n,
    };
    let dir = run_dir.join("checkpoint");
    let available = complete_epochs(&dir);
    if !available.contains(&epoch) {
        bail!(
            "{}: no checkpoint of epoch {epoch}; the run kept epochs {available:?}",
            dir.display()
        );
    }
    if let Err(e) = verify_epoch(&dir, epoch) {
        let (good, _) = verified_epochs(&dir);
        bail!(
            "{e:#}; the epochs whose checkpoints verify: {good:?} (choose one with --checkpoint)"
        );
    }
    Ok(epoch)
}

/// Removes what an interrupted write left behind (`.model-3.mpk.tmp-…` and the like) and the
/// checksums of records that were deleted.
pub fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let orphan_sum = name
            .strip_suffix(".sum")
            .is_some_and(|record| !dir.join(record).exists());
        if name.starts_with('.') || orphan_sum {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::module::{Module, Param};
    use burn::tensor::{Tensor, TensorData};

    /// The file names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[derive(Module, Debug)]
    struct Tiny<B: Backend> {
        w: Param<Tensor<B, 1>>,
    }

    #[test]
    fn records_round_trip_in_full_precision_and_leave_no_temporary_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let device = Default::default();
        // 1 + 2^-20 is not representable in f16: a half-precision recorder would round it.
        let value = 1.0f32 + f32::powi(2.0, -20);
        let tiny = Tiny::<NdArray> {
            w: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![value], [1]),
                &device,
            )),
        };
        let path = tmp.path().join("model-1");
        Recorder::<NdArray>::record(
            &CheckpointRecorder::default(),
            tiny.clone().into_record(),
            path.clone(),
        )
        .expect("save");
        let names = names(tmp.path());
        assert_eq!(names, ["model-1.mpk", "model-1.mpk.sum"]);
        let record =
            Recorder::<NdArray>::load(&CheckpointRecorder::default(), path, &device).expect("load");
        let loaded = tiny.load_record(record);
        let got: Vec<f32> = loaded.w.val().into_data().iter::<f32>().collect();
        assert_eq!(got, vec![value]);
    }

    #[test]
    fn only_epochs_with_all_three_records_are_complete() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for f in [
            "model-1.mpk",
            "optim-1.mpk",
            "scheduler-1.mpk",
            "model-2.mpk",
            "optim-2.mpk",
        ] {
            std::fs::write(tmp.path().join(f), b"x").expect("write");
        }
        assert_eq!(complete_epochs(tmp.path()), BTreeSet::from([1]));
    }

    #[test]
    fn a_record_verifies_until_it_is_truncated_or_altered_and_without_a_sum_it_passes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("model-4.mpk");
        write_record(&path, b"weights of epoch four").expect("write");
        verify_record(&path).expect("intact");
        std::fs::write(&path, b"weights of").expect("truncate");
        let err = format!("{:#}", verify_record(&path).unwrap_err());
        assert!(
            err.contains("model-4.mpk") && err.contains("truncated"),
            "{err}"
        );
        std::fs::write(&path, b"weights of epoch FOUR").expect("alter");
        let err = format!("{:#}", verify_record(&path).unwrap_err());
        assert!(
            err.contains("model-4.mpk") && err.contains("SHA-256"),
            "{err}"
        );
        std::fs::remove_file(sum_path(&path)).expect("remove the sum");
        verify_record(&path).expect("a record without a sum (older runs) passes");
    }

    #[test]
    fn orphaned_sums_and_temporary_files_are_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_record(&tmp.path().join("model-1.mpk"), b"one").expect("write");
        std::fs::write(tmp.path().join("model-0.mpk.sum"), "{}").expect("orphan");
        std::fs::write(tmp.path().join(".model-2.mpk.tmp-1"), "x").expect("partial");
        remove_partial_files(tmp.path());
        let names = names(tmp.path());
        assert_eq!(names, ["model-1.mpk", "model-1.mpk.sum"]);
    }
}
