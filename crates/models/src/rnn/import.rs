//! Import of PyTorch `nn.LSTM` / `nn.GRU` state_dicts (`.pt`/`.pth` pickles or `.safetensors`).
//!
//! PyTorch keys `{prefix}weight_ih_l{k}` (and `weight_hh`, `bias_ih`, `bias_hh`) are remapped
//! to the module paths `layers.{k}.weight_ih`, ...; the 2-D weights are transposed to the
//! `[in, gates * hidden]` layout of [`LstmLayer`](super::LstmLayer)/[`GruLayer`](super::GruLayer).
//! Keys outside `prefix` are ignored; keys under it that the model lacks are reported.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::encoder::weights::cast_float;
use burn::tensor::backend::Backend;
use burn::tensor::{Shape, TensorData};
use burn_store::{
    ApplyResult, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore, PytorchStore,
    SafetensorsStore, TensorSnapshot,
};

use super::Rnn;

/// Why a PyTorch RNN state_dict could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum RnnImportError {
    /// The file could not be opened or parsed.
    #[error("cannot read RNN weights from `{path}`: {message}")]
    Read {
        /// File that was read.
        path: PathBuf,
        /// Underlying store error.
        message: String,
    },
    /// The state_dict keys do not match the model (PyTorch key names, prefix included).
    #[error(
        "RNN state_dict `{path}` does not match the model: missing keys [{}], unexpected keys [{}]",
        missing.join(", "),
        unexpected.join(", ")
    )]
    KeyMismatch {
        /// File that was read.
        path: PathBuf,
        /// Keys the model needs that the file lacks.
        missing: Vec<String>,
        /// Keys under the prefix that the model has no parameter for.
        unexpected: Vec<String>,
    },
    /// Some tensors were found but could not be applied (shape mismatch, unreadable data).
    #[error("RNN state_dict `{path}` has invalid tensors: {}", errors.join("; "))]
    InvalidTensors {
        /// File that was read.
        path: PathBuf,
        /// One message per rejected tensor.
        errors: Vec<String>,
    },
}

/// Loads a PyTorch `nn.LSTM`/`nn.GRU` state_dict into `rnn`; `prefix` (e.g. `decoder.lstm.`)
/// selects the RNN's keys. `.safetensors` files are read as safetensors, anything else as a
/// `torch.save` pickle.
pub fn load_pytorch_rnn<B: Backend>(
    mut rnn: Rnn<B>,
    path: &Path,
    prefix: &str,
) -> Result<Rnn<B>, RnnImportError> {
    let read_error = |message: String| RnnImportError::Read {
        path: path.to_path_buf(),
        message,
    };
    let remapper = KeyRemapper::new()
        .add_pattern(
            format!(r"^{}(weight|bias)_(ih|hh)_l(\d+)$", escape_regex(prefix)),
            "layers.${3}.${1}_${2}",
        )
        .map_err(|e| read_error(format!("invalid key prefix `{prefix}`: {e}")))?;

    // Read (and remap) the file's tensors; apply them with our own adapter, since
    // `PytorchStore::apply_to` always uses burn's Linear/norm adapter.
    let snapshots: Vec<TensorSnapshot> = if is_safetensors(path) {
        let mut store = SafetensorsStore::from_file(path).remap(remapper);
        let snapshots = store
            .get_all_snapshots()
            .map_err(|e| read_error(e.to_string()))?;
        snapshots.values().cloned().collect()
    } else {
        let mut store = PytorchStore::from_file(path)
            .remap(remapper)
            .map_indices_contiguous(false);
        let snapshots = store
            .get_all_snapshots()
            .map_err(|e| read_error(e.to_string()))?;
        snapshots.values().cloned().collect()
    };
    let snapshots = snapshots
        .into_iter()
        .map(cast_float::<B::FloatElem>)
        .collect();
    let result = rnn.apply(snapshots, None, Some(Box::new(PytorchRnnAdapter)), true);
    check_result(&result, path, prefix)?;
    Ok(rnn)
}

/// Transposes PyTorch's `[gates * hidden, in]` RNN weights to the module's `[in, gates * hidden]`.
#[derive(Clone, Copy, Debug)]
struct PytorchRnnAdapter;

impl ModuleAdapter for PytorchRnnAdapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let in_rnn_layer = matches!(
            snapshot.module_type().as_deref(),
            Some("Struct:LstmLayer" | "Struct:GruLayer")
        );
        let is_weight = snapshot
            .path_stack
            .as_ref()
            .and_then(|path| path.last())
            .is_some_and(|name| name == "weight_ih" || name == "weight_hh");
        if !(in_rnn_layer && is_weight && snapshot.shape.num_dims() == 2) {
            return snapshot.clone();
        }
        let data_fn = snapshot.clone_data_fn();
        let (rows, cols) = (snapshot.shape[0], snapshot.shape[1]);
        TensorSnapshot::from_closure(
            Rc::new(move || data_fn().map(transpose_2d)),
            snapshot.dtype,
            Shape::new([cols, rows]),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
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

/// Turns missing/unexpected keys and tensor errors of an [`ApplyResult`] into an error.
fn check_result(result: &ApplyResult, path: &Path, prefix: &str) -> Result<(), RnnImportError> {
    if !result.errors.is_empty() {
        return Err(RnnImportError::InvalidTensors {
            path: path.to_path_buf(),
            errors: result.errors.iter().map(ToString::to_string).collect(),
        });
    }
    let missing: Vec<String> = result
        .missing
        .iter()
        .map(|(module_path, _)| pytorch_key(module_path, prefix))
        .collect();
    // Remapped keys are `layers.*`; unmapped keys keep their name, so the prefix selects them.
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|key| key.starts_with("layers.") || key.starts_with(prefix))
        .map(|key| pytorch_key(key, prefix))
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        Ok(())
    } else {
        Err(RnnImportError::KeyMismatch {
            path: path.to_path_buf(),
            missing,
            unexpected,
        })
    }
}

/// Maps a module path `layers.{k}.{name}` back to PyTorch's `{prefix}{name}_l{k}`.
fn pytorch_key(module_path: &str, prefix: &str) -> String {
    let mut parts = module_path.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("layers"), Some(k), Some(name), None) => format!("{prefix}{name}_l{k}"),
        _ => module_path.to_string(),
    }
}

/// True when `path` has a `.safetensors` extension (any case).
fn is_safetensors(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("safetensors"))
}

/// Escapes regex meta characters so that `text` matches literally.
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for ch in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(ch) {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}
