//! Import of torchvision `state_dict`s (`torch.save(model.state_dict())` or `.safetensors`).
//!
//! Keys map by name after [`torchvision_to_burn_key`]; batch norm `weight`/`bias` become
//! `gamma`/`beta` and linear weights are transposed by burn-store's PyTorch adapter. Keys of
//! layers the encoders do not build ([`is_ignored_key`]) are skipped; any other key left over,
//! any parameter left missing and any shape mismatch is an error that lists them all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Element, Tensor};
use burn_store::{
    ApplyResult, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
    TensorSnapshot,
};

use super::Encoder;

/// Failure to import a torchvision checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file extension is neither `.pth`/`.pt`/`.bin` nor `.safetensors`.
    #[error("unsupported weights file '{0}': expected .pth/.pt/.bin (torch.save) or .safetensors")]
    UnsupportedFormat(PathBuf),
    /// The file could not be read or parsed.
    #[error("cannot read weights '{path}': {message}")]
    Read {
        /// The checkpoint path.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// The checkpoint does not match the module.
    #[error("{}", describe_mismatch(.missing, .unexpected, .errors))]
    Mismatch {
        /// Module parameters (Burn paths) the checkpoint lacks.
        missing: Vec<String>,
        /// Checkpoint keys (after remapping) the module has no parameter for.
        unexpected: Vec<String>,
        /// Shape mismatches and other per-tensor errors.
        errors: Vec<String>,
    },
}

fn describe_mismatch(missing: &[String], unexpected: &[String], errors: &[String]) -> String {
    let mut text = String::from("torchvision weights do not match the module");
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

/// Loads a torchvision `state_dict` (`.pth`/`.pt` or `.safetensors`) into an encoder.
pub fn load_torchvision<B: Backend>(
    encoder: Encoder<B>,
    path: &Path,
) -> Result<Encoder<B>, WeightsError> {
    load_torchvision_module(encoder, path)
}

/// Loads a torchvision `state_dict` into any module laid out as torchvision (encoders or single blocks).
pub fn load_torchvision_module<B: Backend, M: Module<B>>(
    mut module: M,
    path: &Path,
) -> Result<M, WeightsError> {
    let read_error = |message: String| WeightsError::Read {
        path: path.to_path_buf(),
        message,
    };
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    let snapshots: Vec<TensorSnapshot> = match extension.as_deref() {
        Some("pth" | "pt" | "bin") => {
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            let all = store
                .get_all_snapshots()
                .map_err(|e| read_error(e.to_string()))?;
            all.values().cloned().collect()
        }
        Some("safetensors") => {
            let mut store = SafetensorsStore::from_file(path);
            let all = store
                .get_all_snapshots()
                .map_err(|e| read_error(e.to_string()))?;
            all.values().cloned().collect()
        }
        _ => return Err(WeightsError::UnsupportedFormat(path.to_path_buf())),
    };
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
    check(result)?;
    Ok(module)
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

fn check(result: ApplyResult) -> Result<(), WeightsError> {
    let missing: Vec<String> = result.missing.into_iter().map(|(path, _)| path).collect();
    let errors: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
    if missing.is_empty() && result.unused.is_empty() && errors.is_empty() {
        return Ok(());
    }
    Err(WeightsError::Mismatch {
        missing,
        unexpected: result.unused,
        errors,
    })
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
) -> Result<(), WeightsError> {
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
    let missing: Vec<String> = expected.into_keys().collect();
    if missing.is_empty() && unexpected.is_empty() && errors.is_empty() {
        return Ok(());
    }
    Err(WeightsError::Mismatch {
        missing,
        unexpected,
        errors,
    })
}
