//! Import of a PyTorch transformer caption decoder's state_dict (`.safetensors` or `torch.save`),
//! keys as `scripts/parity/transformer.py`'s `CaptionTransformer` names them:
//! `embedding.weight`, `positions.weight`, `memory_proj.*`, `global_proj.*`, `head.*` and
//! `torch.nn.TransformerDecoder`'s `decoder.layers.{i}.{self_attn,multihead_attn}.in_proj_*`,
//! `….out_proj.*`, `linear1/2.*`, `norm1/2/3.*`, `decoder.norm.*`.
//!
//! Names map one to one onto [`TransformerCaptionDecoder`]'s module paths, except that a layer
//! norm's `weight`/`bias` are burn's `gamma`/`beta`, and 2-D weights other than the embedding
//! tables are transposed from PyTorch's `[out, in]` to burn's `[in, out]`. Every key the module
//! lacks or the file lacks is an error naming it (in PyTorch's spelling).

use std::path::Path;

use burn::tensor::backend::Backend;
use burn_store::{ModuleSnapshot, TensorSnapshot};

use super::decoder::TransformerCaptionDecoder;
use crate::import::{cast_float, check_lists, read_snapshots, transposed, ImportError};

/// Loads a PyTorch state_dict into `decoder`; only keys starting with `prefix` (e.g. `""` or
/// `decoder.`) are read. Missing keys, unexpected keys and shape mismatches are one error that
/// lists them all.
pub fn load_pytorch_transformer<B: Backend>(
    mut decoder: TransformerCaptionDecoder<B>,
    path: &Path,
    prefix: &str,
) -> Result<TransformerCaptionDecoder<B>, ImportError> {
    let snapshots: Vec<TensorSnapshot> = read_snapshots(path, None)?
        .iter()
        .filter_map(|snapshot| {
            let key = snapshot.full_path();
            let key = key.strip_prefix(prefix)?;
            Some(cast_float::<B::FloatElem>(to_module(snapshot, key)))
        })
        .collect();
    let result = decoder.apply(snapshots, None, None, true);
    let missing = result
        .missing
        .iter()
        .map(|(module_path, _)| format!("{prefix}{}", torch_key(module_path)))
        .collect();
    let unexpected = result
        .unused
        .iter()
        .map(|module_path| format!("{prefix}{}", torch_key(module_path)))
        .collect();
    let errors = result.errors.iter().map(ToString::to_string).collect();
    check_lists(path, missing, unexpected, errors)?;
    Ok(decoder)
}

/// The module path of PyTorch key `key` (prefix stripped), and whether its tensor is transposed.
pub fn module_path(key: &str) -> (String, bool) {
    let parts: Vec<&str> = key.split('.').collect();
    let (leaf, parent) = match parts.as_slice() {
        [.., parent, leaf] => (*leaf, *parent),
        _ => return (key.to_string(), false),
    };
    let head = &parts[..parts.len() - 1];
    let is_norm = parent.starts_with("norm");
    let renamed = match (is_norm, leaf) {
        (true, "weight") => "gamma",
        (true, "bias") => "beta",
        _ => leaf,
    };
    let is_table = matches!(parent, "embedding" | "positions");
    let transpose = !is_norm && !is_table && (leaf == "weight" || leaf == "in_proj_weight");
    let mut path = head.join(".");
    path.push('.');
    path.push_str(renamed);
    (path, transpose)
}

/// PyTorch's name of module path `path` (the inverse of [`module_path`]).
pub fn torch_key(path: &str) -> String {
    let Some((head, leaf)) = path.rsplit_once('.') else {
        return path.to_string();
    };
    let parent = head.rsplit('.').next().unwrap_or(head);
    let leaf = match (parent.starts_with("norm"), leaf) {
        (true, "gamma") => "weight",
        (true, "beta") => "bias",
        _ => leaf,
    };
    format!("{head}.{leaf}")
}

/// The snapshot of PyTorch key `key` at its module path, transposed where the layouts differ.
fn to_module(snapshot: &TensorSnapshot, key: &str) -> TensorSnapshot {
    let (path, transpose) = module_path(key);
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    if transpose && snapshot.shape.num_dims() == 2 {
        return transposed(snapshot, path);
    }
    let mut snapshot = snapshot.clone();
    snapshot.path_stack = Some(path);
    snapshot
}
