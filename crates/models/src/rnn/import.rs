//! Import of PyTorch `nn.LSTM` / `nn.GRU` state_dicts (`.pt`/`.pth` pickles or `.safetensors`).
//!
//! PyTorch keys `{prefix}weight_ih_l{k}` (and `weight_hh`, `bias_ih`, `bias_hh`) are remapped
//! to the module paths `layers.{k}.weight_ih`, ...; the 2-D weights are transposed to the
//! `[in, gates * hidden]` layout of [`PackedGates`](super::PackedGates).
//! Keys outside `prefix` are ignored; keys under it that the model lacks are reported.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn_store::{ApplyResult, KeyRemapper, ModuleAdapter, ModuleSnapshot, TensorSnapshot};

use super::multilayer::Rnn;
use crate::import::{cast_float, check_lists, read_snapshots, transposed, ImportError};

/// Loads a PyTorch `nn.LSTM`/`nn.GRU` state_dict into `rnn`; `prefix` (e.g. `decoder.lstm.`)
/// selects the RNN's keys. `.safetensors` files are read as safetensors, anything else as a
/// `torch.save` pickle.
pub fn load_pytorch_rnn<B: Backend>(
    mut rnn: Rnn<B>,
    path: &Path,
    prefix: &str,
) -> Result<Rnn<B>, ImportError> {
    let remapper = KeyRemapper::new()
        .add_pattern(
            format!(r"^{}(weight|bias)_(ih|hh)_l(\d+)$", escape_regex(prefix)),
            "layers.${3}.${1}_${2}",
        )
        .map_err(|e| ImportError::Read {
            path: path.to_path_buf(),
            message: format!("invalid key prefix `{prefix}`: {e}"),
        })?;
    // Read (and remap) the file's tensors; apply them with our own adapter, since
    // `PytorchStore::apply_to` always uses burn's Linear/norm adapter.
    let snapshots = read_snapshots(path, Some(remapper))?
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
            Some("Struct:PackedGates")
        );
        let is_weight = snapshot
            .path_stack
            .as_ref()
            .and_then(|path| path.last())
            .is_some_and(|name| name == "weight_ih" || name == "weight_hh");
        if !(in_rnn_layer && is_weight && snapshot.shape.num_dims() == 2) {
            return snapshot.clone();
        }
        transposed(snapshot, snapshot.path_stack.clone().unwrap_or_default())
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// [`ImportError::Mismatch`] of an [`ApplyResult`], keys as PyTorch names them.
fn check_result(result: &ApplyResult, path: &Path, prefix: &str) -> Result<(), ImportError> {
    let missing = result
        .missing
        .iter()
        .map(|(module_path, _)| pytorch_key(module_path, prefix))
        .collect();
    // Remapped keys are `layers.*`; unmapped keys keep their name, so the prefix selects them.
    let unexpected = result
        .unused
        .iter()
        .filter(|key| key.starts_with("layers.") || key.starts_with(prefix))
        .map(|key| pytorch_key(key, prefix))
        .collect();
    let errors = result.errors.iter().map(ToString::to_string).collect();
    check_lists(path, missing, unexpected, errors)
}

/// Maps a module path `layers.{k}.{name}` back to PyTorch's `{prefix}{name}_l{k}`.
fn pytorch_key(module_path: &str, prefix: &str) -> String {
    let mut parts = module_path.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("layers"), Some(k), Some(name), None) => format!("{prefix}{name}_l{k}"),
        _ => module_path.to_string(),
    }
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
