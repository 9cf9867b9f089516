//! Training checkpoints: full-precision records written atomically, the epochs a run directory
//! holds, which one a command loads (`best`, `last` or a number), and loading it.
//!
//! burn-train writes `checkpoint/{model,optim,scheduler}-<epoch>.mpk` through a file recorder.
//! [`CheckpointRecorder`] is burn's named-MessagePack format in full precision (burn's
//! `CompactRecorder` rounds weights and Adam moments to f16, so a resumed run would continue
//! from other numbers), written under a hidden temporary name, synced, then renamed: a file
//! under its final name is always complete.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder, Recorder, RecorderError,
};
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::backend::Backend;
use serde::{de::DeserializeOwned, Serialize};

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

    fn save_item<I: Serialize>(&self, item: I, file: PathBuf) -> std::result::Result<(), RecorderError> {
        let unknown =
            |e: std::io::Error| RecorderError::Unknown(format!("{}: {e}", file.display()));
        let final_path = file.with_extension("mpk");
        let name = final_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The inner recorder sets the extension itself: `.model-3.partial` → `.model-3.mpk`.
        let partial = final_path.with_file_name(format!(".{name}.partial"));
        let written = partial.with_extension("mpk");
        <NamedMpkFileRecorder<FullPrecisionSettings> as Recorder<B>>::save_item(
            &self.inner,
            item,
            partial,
        )?;
        std::fs::File::open(&written)
            .and_then(|f| f.sync_all())
            .map_err(unknown)?;
        std::fs::rename(&written, &final_path).map_err(unknown)?;
        if let Some(dir) = final_path.parent() {
            // Make the rename itself durable.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn load_item<I: DeserializeOwned>(
        &self,
        file: &mut PathBuf,
    ) -> std::result::Result<I, RecorderError> {
        <NamedMpkFileRecorder<FullPrecisionSettings> as Recorder<B>>::load_item(&self.inner, file)
    }
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

/// `model` with the weights of `run_dir`'s checkpoint of `epoch`; the error names the file.
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
    let record = CheckpointRecorder::default()
        .load(path, device)
        .with_context(|| format!("loading checkpoint {}", file.display()))?;
    Ok(model.load_record(record))
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
    let available = complete_epochs(&run_dir.join("checkpoint"));
    if !available.contains(&epoch) {
        bail!(
            "{}: no checkpoint of epoch {epoch}; the run kept epochs {available:?}",
            run_dir.join("checkpoint").display()
        );
    }
    Ok(epoch)
}

/// Removes what an interrupted write left behind (`.model-3.mpk` and the like).
pub fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with('.') {
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
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["model-1.mpk".to_string()]);
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
}
