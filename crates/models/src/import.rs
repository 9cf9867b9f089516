//! What the PyTorch importers (torchvision encoders, `nn.LSTM`/`nn.GRU`, the attention decoder)
//! share: reading a checkpoint's tensors, casting them to the model's float type, and one error
//! type that lists everything that does not fit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::tensor::{Element, Shape, TensorData};
use burn_store::{
    ApplyResult, KeyRemapper, ModuleStore, PytorchStore, SafetensorsStore, TensorSnapshot,
};

use crate::pickle_scan::{check_tensor_sizes, scan_torch_file};

/// Why a PyTorch checkpoint could not be imported; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file extension is not one the importer reads.
    #[error("unsupported weights file '{}': expected .pth/.pt/.bin (torch.save) or .safetensors", .0.display())]
    UnsupportedFormat(PathBuf),
    /// The file could not be opened or parsed.
    #[error("cannot read weights '{}': {message}", path.display())]
    Read {
        /// The checkpoint path.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// The checkpoint is laid out for another kind of encoder (a CLIP checkpoint given to a
    /// torchvision encoder, or a torchvision ViT's given to CLIP's tower).
    #[error("weights '{}' hold {found} (keys {}), but this encoder takes {expected}", path.display(), keys.join(", "))]
    WrongLayout {
        /// The checkpoint path.
        path: PathBuf,
        /// What the file holds.
        found: String,
        /// What the encoder takes.
        expected: String,
        /// The first few keys that show the file's layout.
        keys: Vec<String>,
    },
    /// The checkpoint does not match the module.
    #[error("{}", describe_mismatch(path, missing, unexpected, errors))]
    Mismatch {
        /// The checkpoint path (empty when only a key listing was checked).
        path: PathBuf,
        /// Parameters the module needs that the checkpoint lacks.
        missing: Vec<String>,
        /// Checkpoint keys the module has no parameter for.
        unexpected: Vec<String>,
        /// Shape mismatches and unreadable tensors.
        errors: Vec<String>,
    },
}

fn describe_mismatch(
    path: &Path,
    missing: &[String],
    unexpected: &[String],
    errors: &[String],
) -> String {
    let mut text = if path.as_os_str().is_empty() {
        String::from("weights do not match the module")
    } else {
        format!("weights '{}' do not match the module", path.display())
    };
    if let Some(hint) = prefix_hint(missing, unexpected) {
        let _ = write!(text, "\n  {hint}");
    }
    for (title, list) in [
        ("missing", missing),
        ("unexpected", unexpected),
        ("errors", errors),
    ] {
        if !list.is_empty() {
            let _ = write!(text, "\n  {title} ({}): {}", list.len(), list.join(", "));
        }
    }
    text
}

/// What to do when the file holds the module's keys behind one prefix (at least half of the
/// missing keys are found as `<prefix>.<key>`): a training checkpoint that keeps the weights
/// under `state_dict` or `model`, a model saved from `nn.DataParallel` (`module.`), or a whole
/// model of which the module is one part.
fn prefix_hint(missing: &[String], unexpected: &[String]) -> Option<String> {
    let wanted: std::collections::HashSet<&str> = missing.iter().map(String::as_str).collect();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for key in unexpected {
        for (i, _) in key.match_indices('.') {
            if wanted.contains(&key[i + 1..]) {
                *counts.entry(&key[..i]).or_default() += 1;
            }
        }
    }
    let (prefix, found) = counts.into_iter().max_by_key(|(_, n)| *n)?;
    if found == 0 || 2 * found < missing.len() {
        return None;
    }
    Some(match prefix {
        "module" => format!(
            "{found} of the {} missing keys are in the file behind 'module.': the model was saved \
             from nn.DataParallel or DistributedDataParallel; save model.module.state_dict() \
             instead",
            missing.len()
        ),
        "state_dict" | "model" | "model_state_dict" | "net" | "network" | "weights" => format!(
            "{found} of the {} missing keys are in the file behind '{prefix}.': it is a training \
             checkpoint with the weights under '{prefix}'; save them on their own: \
             torch.save(checkpoint['{prefix}'], 'weights.pth')",
            missing.len()
        ),
        _ => format!(
            "{found} of the {} missing keys are in the file behind '{prefix}.': it holds a larger \
             model; save that part on its own: torch.save({{k[len('{prefix}.'):]: v for k, v in \
             state_dict.items() if k.startswith('{prefix}.')}}, 'weights.pth')",
            missing.len()
        ),
    })
}

/// `Ok` when nothing is missing, unexpected or in error, else [`ImportError::Mismatch`].
pub(crate) fn check_lists(
    path: &Path,
    missing: Vec<String>,
    unexpected: Vec<String>,
    errors: Vec<String>,
) -> Result<(), ImportError> {
    if missing.is_empty() && unexpected.is_empty() && errors.is_empty() {
        return Ok(());
    }
    Err(ImportError::Mismatch {
        path: path.to_path_buf(),
        missing,
        unexpected,
        errors,
    })
}

/// [`check_lists`] of an apply result, its keys as the module names them.
pub(crate) fn check_applied(path: &Path, result: ApplyResult) -> Result<(), ImportError> {
    check_lists(
        path,
        result.missing.into_iter().map(|(path, _)| path).collect(),
        result.unused,
        result.errors.iter().map(ToString::to_string).collect(),
    )
}

/// Whether `path` has a `.safetensors` extension (any case).
pub(crate) fn is_safetensors(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("safetensors"))
}

/// Every tensor of `path`, keys renamed by `remapper`: `.safetensors` files are read as
/// safetensors, anything else as a `torch.save` pickle.
pub(crate) fn read_snapshots(
    path: &Path,
    remapper: Option<KeyRemapper>,
) -> Result<Vec<TensorSnapshot>, ImportError> {
    let read_error = |e: &dyn std::fmt::Display| ImportError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if is_safetensors(path) {
        let mut store = SafetensorsStore::from_file(path);
        if let Some(remapper) = remapper {
            store = store.remap(remapper);
        }
        let all = store.get_all_snapshots().map_err(|e| read_error(&e))?;
        Ok(all.values().cloned().collect())
    } else {
        // burn-store allocates from the file's length fields before checking them: the
        // pre-scan refuses lengths the file cannot hold first.
        let payload = scan_torch_file(path).map_err(|e| read_error(&e))?;
        let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
        if let Some(remapper) = remapper {
            store = store.remap(remapper);
        }
        let all = store.get_all_snapshots().map_err(|e| read_error(&e))?;
        let snapshots: Vec<TensorSnapshot> = all.values().cloned().collect();
        check_tensor_sizes(&snapshots, payload).map_err(|e| read_error(&e))?;
        Ok(snapshots)
    }
}

/// A float snapshot converted (lazily) to the module's float type, e.g. f16 or f32 weights into
/// an f64 model; other snapshots unchanged.
pub(crate) fn cast_float<E: Element>(snapshot: TensorSnapshot) -> TensorSnapshot {
    let target = E::dtype();
    if !snapshot.dtype.is_float() || snapshot.dtype == target {
        return snapshot;
    }
    let shape = snapshot.shape.clone();
    let path = snapshot.path_stack.clone().unwrap_or_default();
    let containers = snapshot.container_stack.clone().unwrap_or_default();
    let id = snapshot.tensor_id.unwrap_or_default();
    TensorSnapshot::from_closure(
        Rc::new(move || snapshot.to_data().map(|data| data.convert::<E>())),
        target,
        shape,
        path,
        containers,
        id,
    )
}

/// A 2-D snapshot transposed (lazily), at module path `path`: PyTorch's `[out, in]` weights in
/// the `[in, out]` layout the recurrent layers store.
pub(crate) fn transposed(snapshot: &TensorSnapshot, path: Vec<String>) -> TensorSnapshot {
    let data_fn = snapshot.clone_data_fn();
    let (rows, cols) = (snapshot.shape[0], snapshot.shape[1]);
    TensorSnapshot::from_closure(
        Rc::new(move || data_fn().map(transpose_2d)),
        snapshot.dtype,
        Shape::new([cols, rows]),
        path,
        snapshot.container_stack.clone().unwrap_or_default(),
        snapshot.tensor_id.unwrap_or_default(),
    )
}

/// Transposes 2-D tensor data of any dtype (byte-wise copy).
pub(crate) fn transpose_2d(data: TensorData) -> TensorData {
    let (rows, cols) = (data.shape[0], data.shape[1]);
    let size = data.dtype.size();
    let bytes = data.as_bytes();
    let mut transposed = vec![0u8; bytes.len()];
    for i in 0..rows {
        for j in 0..cols {
            let src = (i * cols + j) * size;
            let dst = (j * rows + i) * size;
            transposed[dst..dst + size].copy_from_slice(&bytes[src..src + size]);
        }
    }
    TensorData::from_bytes_vec(transposed, [cols, rows], data.dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn a_checkpoint_dict_or_a_data_parallel_model_is_named_in_the_mismatch() {
        let missing = strings(&["conv1.weight", "bn1.weight", "fc.bias"]);
        let message = |unexpected: &[&str]| {
            describe_mismatch(Path::new("w.pth"), &missing, &strings(unexpected), &[])
        };
        let dict = message(&["state_dict.conv1.weight", "state_dict.bn1.weight", "epoch"]);
        assert!(
            dict.contains("2 of the 3 missing keys are in the file behind 'state_dict.'")
                && dict.contains("torch.save(checkpoint['state_dict'], 'weights.pth')"),
            "{dict}"
        );
        let parallel = message(&["module.conv1.weight", "module.bn1.weight", "module.fc.bias"]);
        assert!(
            parallel.contains("3 of the 3") && parallel.contains("model.module.state_dict()"),
            "{parallel}"
        );
        let nested = message(&["backbone.body.conv1.weight", "backbone.body.fc.bias"]);
        assert!(nested.contains("behind 'backbone.body.'"), "{nested}");
        // One stray match is no pattern.
        let stray = message(&["x.conv1.weight", "other"]);
        assert!(!stray.contains("behind"), "{stray}");
    }
}
