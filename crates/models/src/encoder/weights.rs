//! Import of torchvision `state_dict`s (`torch.save(model.state_dict())` or `.safetensors`).
//!
//! Keys map by name after [`torchvision_to_burn_key`]; batch norm `weight`/`bias` become
//! `gamma`/`beta` and linear weights are transposed by burn-store's PyTorch adapter. Keys of
//! layers the encoders do not build ([`is_ignored_key`]) are skipped; any other key left over,
//! any parameter left missing and any shape mismatch is an error that lists them all.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter};

use crate::import::{cast_float, check_applied, check_lists, read_snapshots, ImportError};

/// Maps a torchvision key to the Burn module path (`Mixed_5b.` -> `mixed_5b.`, `downsample.0.` -> `downsample.conv.`).
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
                _ => segment,
            };
            previous = segment;
            mapped
        })
        .collect();
    segments.join(".")
}

/// Whether a torchvision key belongs to a layer the encoders leave out (classifiers, aux head, BN counters).
pub fn is_ignored_key(key: &str) -> bool {
    key.ends_with(".num_batches_tracked")
        || key.starts_with("fc.")
        || key.starts_with("AuxLogits.")
        || key.starts_with("classifier.6.")
}

/// Loads a torchvision `state_dict` (`.pth`/`.pt` or `.safetensors`) into an encoder
/// ([`Encoder`](super::Encoder)), as [`load_torchvision_module`] does for any module.
pub fn load_torchvision<B: Backend, M: Module<B>>(
    encoder: M,
    path: &Path,
) -> Result<M, ImportError> {
    load_torchvision_module(encoder, path)
}

/// Loads a torchvision `state_dict` into any module laid out as torchvision (encoders or single blocks).
pub fn load_torchvision_module<B: Backend, M: Module<B>>(
    mut module: M,
    path: &Path,
) -> Result<M, ImportError> {
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(
        extension.as_deref(),
        Some("pth" | "pt" | "bin" | "safetensors")
    ) {
        return Err(ImportError::UnsupportedFormat(path.to_path_buf()));
    }
    let snapshots = read_snapshots(path, None)?;
    // Batch norm leaves are renamed here rather than by the adapter, so that the apply result
    // does not list the original names as unused.
    let burn_paths = module_params(&module);
    let snapshots = snapshots
        .into_iter()
        .filter(|snapshot| !is_ignored_key(&snapshot.full_path()))
        .map(|mut snapshot| {
            let key = torchvision_to_burn_key(&snapshot.full_path());
            let key = burn_paths
                .get(&key)
                .map_or(key, |param| param.burn_path.clone());
            snapshot.path_stack = Some(key.split('.').map(str::to_string).collect());
            cast_float::<B::FloatElem>(snapshot)
        })
        .collect();
    let result = module.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), true);
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
                ("Struct:BatchNorm", "gamma") => *leaf = "weight".to_string(),
                ("Struct:BatchNorm", "beta") => *leaf = "bias".to_string(),
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
