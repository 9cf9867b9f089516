//! Import of torchvision `state_dict`s (`torch.save(model.state_dict())` or `.safetensors`), and
//! of open_clip / OpenAI CLIP `state_dict`s into CLIP's image tower ([`load_open_clip`]).
//!
//! Keys map by name after [`torchvision_to_burn_key`]; batch norm and layer norm
//! `weight`/`bias` become `gamma`/`beta` and linear weights are transposed by burn-store's
//! PyTorch adapter. Keys of layers the encoders do not build ([`is_ignored_key`]), and those under
//! a prefix that one encoder was configured without ([`load_torchvision_module_skipping`], e.g.
//! the classifier of a VGG built for its spatial grid only) are skipped; any other key left over, any parameter left missing and any shape mismatch is an error that
//! lists them all. A CLIP checkpoint given to a torchvision encoder, or a torchvision ViT's to
//! a CLIP tower, is an error naming the file and the keys that show what it is
//! ([`load_encoder`]).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter};

use burn_store::TensorSnapshot;

use crate::import::{cast_float, check_applied, check_lists, read_snapshots, ImportError};

/// Maps a torchvision key to the Burn module path (`Mixed_5b.` -> `mixed_5b.`,
/// `downsample.0.` -> `downsample.conv.`, ViT's `layers.encoder_layer_3.` -> `layers.3.` and
/// `mlp.0.`/`mlp.3.` -> `mlp.linear_1.`/`mlp.linear_2.`).
pub fn torchvision_to_burn_key(key: &str) -> String {
    let key = if let Some(rest) = key.strip_prefix("Conv2d_") {
        format!("conv2d_{rest}")
    } else if let Some(rest) = key.strip_prefix("Mixed_") {
        format!("mixed_{rest}")
    } else {
        key.to_string()
    };
    let mut previous = "";
    let segments: Vec<&str> = key
        .split('.')
        .map(|segment| {
            let mapped = match (previous, segment) {
                ("downsample", "0") => "conv",
                ("downsample", "1") => "bn",
                ("mlp", "0") => "linear_1",
                ("mlp", "3") => "linear_2",
                ("layers", layer) => layer.strip_prefix("encoder_layer_").unwrap_or(layer),
                _ => segment,
            };
            previous = segment;
            mapped
        })
        .collect();
    segments.join(".")
}

/// Whether a torchvision key belongs to a layer the encoders leave out (classifiers, aux head,
/// BN counters, ViT's `heads`).
pub fn is_ignored_key(key: &str) -> bool {
    key.ends_with(".num_batches_tracked")
        || key.starts_with("fc.")
        || key.starts_with("AuxLogits.")
        || key.starts_with("classifier.6.")
        || key.starts_with("heads.")
}

/// Keys that only a CLIP checkpoint has (open_clip's and OpenAI's layout, whole model or tower).
fn is_clip_key(key: &str) -> bool {
    key.starts_with("visual.")
        || key.starts_with("transformer.resblocks.")
        || matches!(
            key,
            "class_embedding" | "positional_embedding" | "ln_pre.weight" | "proj"
        )
}

/// Keys that only a torchvision ViT checkpoint has.
fn is_torchvision_vit_key(key: &str) -> bool {
    key.starts_with("conv_proj.")
        || key.starts_with("encoder.layers.")
        || matches!(key, "class_token" | "encoder.pos_embedding")
}

/// The first few keys of `keys` that `pick` selects, sorted: what an error quotes.
fn telltale(keys: &[String], pick: fn(&str) -> bool) -> Vec<String> {
    let mut found: Vec<String> = keys.iter().filter(|k| pick(k)).cloned().collect();
    found.sort();
    found.truncate(4);
    found
}

/// Checks that the checkpoint at `path` has the layout its encoder reads: open_clip's for CLIP's
/// tower (`clip = true`), torchvision's for the others ([`super::load_encoder`] loads it).
///
/// A CLIP checkpoint given to a torchvision encoder, or a torchvision ViT checkpoint given to
/// CLIP's tower, is [`ImportError::WrongLayout`], naming the file and the keys that show it.
pub fn check_layout(path: &Path, clip: bool) -> Result<(), ImportError> {
    check_extension(path)?;
    let keys: Vec<String> = read_snapshots(path, None)?
        .iter()
        .map(TensorSnapshot::full_path)
        .collect();
    let wrong = |found: &str, expected: &str, pick: fn(&str) -> bool| ImportError::WrongLayout {
        path: path.to_path_buf(),
        found: found.to_string(),
        expected: expected.to_string(),
        keys: telltale(&keys, pick),
    };
    if clip && keys.iter().any(|k| is_torchvision_vit_key(k)) {
        return Err(wrong(
            "a torchvision ViT state_dict",
            "an open_clip / OpenAI CLIP state_dict (use arch vit_b_16, vit_b_32 or vit_l_16 for this file)",
            is_torchvision_vit_key,
        ));
    }
    if !clip && keys.iter().any(|k| is_clip_key(k)) {
        return Err(wrong(
            "an open_clip / OpenAI CLIP state_dict",
            "a torchvision state_dict (this file needs a CLIP arch: clip_vit_b_32, clip_vit_b_16, or their _quickgelu forms for OpenAI's weights)",
            is_clip_key,
        ));
    }
    Ok(())
}

/// Loads an open_clip / OpenAI CLIP `state_dict` into CLIP's image tower.
///
/// A whole CLIP model's `state_dict` (`visual.*` keys beside the text tower's) gives its
/// `visual.*` keys with the prefix removed, and the rest is not read; a file without `visual.`
/// keys is taken as the tower's own `state_dict` (`model.visual.state_dict()`). Every key must
/// then map onto the tower, and every parameter must be given.
pub fn load_open_clip<B: Backend, M: Module<B>>(module: M, path: &Path) -> Result<M, ImportError> {
    check_extension(path)?;
    let snapshots = read_snapshots(path, None)?;
    let whole = snapshots
        .iter()
        .any(|snapshot| snapshot.full_path().starts_with("visual."));
    let snapshots = snapshots
        .into_iter()
        .filter_map(|mut snapshot| {
            let original = snapshot.full_path();
            if !whole {
                return Some((original, snapshot));
            }
            let rest = original.strip_prefix("visual.")?;
            snapshot.path_stack = Some(rest.split('.').map(str::to_string).collect());
            Some((original, snapshot))
        })
        .collect();
    let prefix = if whole { "visual." } else { "" };
    apply_pytorch(module, path, snapshots, |key| format!("{prefix}{key}"))
}

fn check_extension(path: &Path) -> Result<(), ImportError> {
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    if matches!(
        extension.as_deref(),
        Some("pth" | "pt" | "bin" | "safetensors")
    ) {
        Ok(())
    } else {
        Err(ImportError::UnsupportedFormat(path.to_path_buf()))
    }
}

/// Loads a torchvision `state_dict` (`.pth`/`.pt` or `.safetensors`) into an encoder
/// (`Encoder`), as [`load_torchvision_module`] does for any module; `load_encoder` also
/// takes CLIP checkpoints and tells the layouts apart.
pub fn load_torchvision<B: Backend, M: Module<B>>(
    encoder: M,
    path: &Path,
) -> Result<M, ImportError> {
    load_torchvision_module(encoder, path)
}

/// Loads a torchvision `state_dict` into any module laid out as torchvision (encoders or single blocks).
pub fn load_torchvision_module<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
) -> Result<M, ImportError> {
    load_torchvision_module_skipping(module, path, &[])
}

/// [`load_torchvision_module`] for a module built without some of torchvision's layers: file
/// keys starting with one of `unbuilt` (torchvision names, e.g. `"classifier."`) are not read.
/// Every parameter the module has must still be given.
pub fn load_torchvision_module_skipping<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
    unbuilt: &[&str],
) -> Result<M, ImportError> {
    check_extension(path)?;
    let snapshots = read_snapshots(path, None)?
        .into_iter()
        .filter(|snapshot| {
            let key = snapshot.full_path();
            !is_ignored_key(&key) && !unbuilt.iter().any(|prefix| key.starts_with(prefix))
        })
        .map(|mut snapshot| {
            let original = snapshot.full_path();
            let key = torchvision_to_burn_key(&original);
            snapshot.path_stack = Some(key.split('.').map(str::to_string).collect());
            (original, snapshot)
        })
        .collect();
    apply_pytorch(module, path, snapshots, burn_to_torchvision_key)
}

/// The inverse of [`torchvision_to_burn_key`] for the renamed segments that errors quote
/// (`downsample.conv.` -> `downsample.0.`, ViT's `encoder.layers.3.` ->
/// `encoder.layers.encoder_layer_3.`, `mlp.linear_1.` -> `mlp.0.`).
pub fn burn_to_torchvision_key(key: &str) -> String {
    let segments: Vec<&str> = key.split('.').collect();
    let mut out = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let previous = if i > 0 { segments[i - 1] } else { "" };
        let before = if i > 1 { segments[i - 2] } else { "" };
        out.push(match (before, previous, *segment) {
            (_, "downsample", "conv") => "0".to_string(),
            (_, "downsample", "bn") => "1".to_string(),
            (_, "mlp", "linear_1") => "0".to_string(),
            (_, "mlp", "linear_2") => "3".to_string(),
            ("encoder", "layers", n) if n.parse::<usize>().is_ok() => format!("encoder_layer_{n}"),
            _ => segment.to_string(),
        });
    }
    out.join(".")
}

/// Applies snapshots at PyTorch-named module paths (PyTorch leaf names and layouts), each with
/// its key in the file, to `module`. Errors quote the file's keys: unexpected ones as they are,
/// missing ones as `file_key` names a module path.
fn apply_pytorch<B: Backend, M: Module<B>>(
    mut module: M,
    path: &Path,
    snapshots: Vec<(String, TensorSnapshot)>,
    file_key: impl Fn(&str) -> String,
) -> Result<M, ImportError> {
    // Normalisation leaves are renamed here rather than by the adapter, so that the apply
    // result does not list the original names as unused.
    let burn_paths = module_params(&module);
    let to_pytorch: BTreeMap<String, String> = burn_paths
        .iter()
        .map(|(pytorch, param)| (param.burn_path.clone(), pytorch.clone()))
        .collect();
    let mut originals = BTreeMap::new();
    let snapshots = snapshots
        .into_iter()
        .map(|(original, mut snapshot)| {
            let key = snapshot.full_path();
            let key = burn_paths
                .get(&key)
                .map_or(key, |param| param.burn_path.clone());
            originals.insert(key.clone(), original);
            snapshot.path_stack = Some(key.split('.').map(str::to_string).collect());
            cast_float::<B::FloatElem>(snapshot)
        })
        .collect();
    let mut result = module.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    for (missing, _) in &mut result.missing {
        if let Some(pytorch) = to_pytorch.get(missing.as_str()) {
            *missing = file_key(pytorch);
        }
    }
    for unused in &mut result.unused {
        if let Some(original) = originals.get(unused.as_str()) {
            *unused = original.clone();
        }
    }
    check_applied(path, result)?;
    Ok(module)
}

/// The torchvision-layout keys and shapes a module expects: Burn paths, PyTorch leaf names and shapes.
///
/// Reads shapes lazily, so parameters that were never touched are not initialised.
pub fn expected_torchvision_params<B: Backend, M: Module<B>>(
    module: &M,
) -> BTreeMap<String, Vec<usize>> {
    module_params(module)
        .into_iter()
        .map(|(path, param)| (path, param.shape))
        .collect()
}

/// A module parameter seen from torchvision: its Burn path and its PyTorch-layout shape.
struct ParamInfo {
    burn_path: String,
    shape: Vec<usize>,
}

/// Parameters keyed by PyTorch-style path (Burn structure, PyTorch leaf names).
fn module_params<B: Backend, M: Module<B>>(module: &M) -> BTreeMap<String, ParamInfo> {
    let mut visitor = ParamShapes::default();
    module.visit(&mut visitor);
    visitor.params
}

/// Visitor collecting PyTorch-named parameter paths and shapes, skipping enum variant names.
#[derive(Default)]
struct ParamShapes {
    path: Vec<String>,
    containers: Vec<String>,
    params: BTreeMap<String, ParamInfo>,
}

impl<B: Backend> ModuleVisitor<B> for ParamShapes {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
        if !container_type.starts_with("Enum:") {
            self.path.push(name.to_string());
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.containers.pop();
        if !container_type.starts_with("Enum:") {
            self.path.pop();
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let module = self
            .containers
            .iter()
            .rev()
            .find(|container| container.starts_with("Struct:"))
            .map_or("", String::as_str);
        let burn_path = self.path.join(".");
        let mut path = self.path.clone();
        let mut shape = param.lazy_shape().to_vec();
        if let Some(leaf) = path.last_mut() {
            match (module, leaf.as_str()) {
                ("Struct:BatchNorm" | "Struct:LayerNorm", "gamma") => *leaf = "weight".to_string(),
                ("Struct:BatchNorm" | "Struct:LayerNorm", "beta") => *leaf = "bias".to_string(),
                ("Struct:Linear", "weight") => shape.reverse(),
                _ => {}
            }
        }
        self.params
            .insert(path.join("."), ParamInfo { burn_path, shape });
    }
}

/// Checks a torchvision key/shape listing against a module without loading any data.
pub fn check_torchvision_keys<B: Backend, M: Module<B>>(
    module: &M,
    keys: &[(String, Vec<usize>)],
) -> Result<(), ImportError> {
    let mut expected = expected_torchvision_params(module);
    let mut unexpected = Vec::new();
    let mut errors = Vec::new();
    for (key, shape) in keys.iter().filter(|(key, _)| !is_ignored_key(key)) {
        let path = torchvision_to_burn_key(key);
        match expected.remove(&path) {
            None => unexpected.push(key.clone()),
            Some(want) if want != *shape => errors.push(format!(
                "shape mismatch for '{key}': module {want:?}, checkpoint {shape:?}"
            )),
            Some(_) => {}
        }
    }
    check_lists(
        Path::new(""),
        expected.into_keys().collect(),
        unexpected,
        errors,
    )
}

/// Checks an open_clip key/shape listing (a whole CLIP model's or the tower's own) against
/// CLIP's image tower without loading any data, as [`load_open_clip`] selects the keys.
pub fn check_open_clip_keys<B: Backend, M: Module<B>>(
    module: &M,
    keys: &[(String, Vec<usize>)],
) -> Result<(), ImportError> {
    let whole = keys.iter().any(|(key, _)| key.starts_with("visual."));
    let tower: Vec<(String, Vec<usize>)> = keys
        .iter()
        .filter_map(|(key, shape)| {
            let key = if whole {
                key.strip_prefix("visual.")?
            } else {
                key
            };
            Some((key.to_string(), shape.clone()))
        })
        .collect();
    check_torchvision_keys(module, &tower)
}
