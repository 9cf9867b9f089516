//! Backends and device choice: the CPU backend always, CUDA with the `cuda` feature, burn's
//! wgpu backend (Vulkan, Metal) with the `wgpu` / `vulkan` / `metal` features.

use anyhow::{bail, Result};

use crate::spec::{DeviceChoice, ExperimentSpec, Precision, WgpuChoice};

#[cfg(feature = "wgpu")]
pub mod wgpu;

/// The CPU backend used for training and evaluation (chosen by measurement, see docs/cpu-backend.md).
pub type Cpu = burn::backend::Flex;

/// The CUDA backend in f32.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;

/// The CUDA backend in bfloat16 (`experiment.precision = "bf16"`).
#[cfg(feature = "cuda")]
pub type GpuBf16 = burn::backend::Cuda<burn::tensor::bf16>;

/// The CUDA backend in IEEE half (`experiment.precision = "f16"`).
#[cfg(feature = "cuda")]
pub type GpuF16 = burn::backend::Cuda<burn::tensor::f16>;

/// burn's wgpu backend in f32.
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;

/// burn's wgpu backend in IEEE half (`experiment.precision = "f16"` on an adapter with shader f16).
#[cfg(feature = "wgpu")]
pub type WgpuF16 = burn::backend::Wgpu<burn::tensor::f16>;

/// A wgpu adapter chosen for a run (its place in `caplab devices`' list, and how burn selects it).
#[cfg(feature = "wgpu")]
pub use self::wgpu::AdapterRef;

/// Without a wgpu feature no adapter is ever chosen.
#[cfg(not(feature = "wgpu"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterRef {
    /// Its place in the adapter list.
    pub index: usize,
}

/// A device the run can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The CPU backend (always f32).
    Cpu,
    /// A CUDA GPU.
    Cuda {
        /// Its CUDA ordinal.
        index: usize,
        /// The float type of the run's tensors.
        precision: Precision,
    },
    /// An adapter of burn's wgpu backend.
    Wgpu {
        /// Which one.
        adapter: AdapterRef,
        /// The float type of the run's tensors (f32 or f16).
        precision: Precision,
    },
}

impl Resolved {
    /// How many threads [`caplab_models::Captioner::caption`] splits a decoding batch over: one
    /// per rayon thread on the CPU (its element-wise kernels run on one thread each), 1 on a
    /// GPU. The captions are the same either way.
    pub fn decode_threads(self) -> usize {
        match self {
            Resolved::Cpu => rayon::current_num_threads(),
            Resolved::Cuda { .. } | Resolved::Wgpu { .. } => 1,
        }
    }

    /// A name for reports: `cpu (burn Flex backend)`, `cuda:N (burn CUDA backend)`, with the
    /// precision appended when it is not f32.
    pub fn describe(self) -> String {
        match self {
            Resolved::Cpu => "cpu (burn Flex backend)".to_string(),
            Resolved::Cuda {
                index,
                precision: Precision::F32,
            } => format!("cuda:{index} (burn CUDA backend)"),
            Resolved::Cuda { index, precision } => {
                format!("cuda:{index} (burn CUDA backend, {})", precision.name())
            }
            Resolved::Wgpu { adapter, precision } => {
                let name = adapter_name(adapter);
                let api = if cfg!(feature = "vulkan") {
                    "Vulkan"
                } else if cfg!(feature = "metal") {
                    "Metal"
                } else {
                    "WGSL"
                };
                let f16 = if precision.is_f32() { "" } else { ", f16" };
                format!(
                    "wgpu:{} {name}(burn wgpu backend, {api}{f16})",
                    adapter.index
                )
            }
        }
    }

    /// Whether this is the CPU backend.
    pub fn is_cpu(self) -> bool {
        self == Resolved::Cpu
    }
}

/// Checks, before anything is created, that every parameter of `model` fits one buffer of the
/// resolved device. A wgpu adapter binds at most `max_storage_buffer_binding_size` bytes per
/// tensor (Mesa's lavapipe: 128 MiB, less than VGG's 411 MB `fc6` weight), and a larger one
/// would fail deep inside burn. `context` starts the message (the spec key or flag that chose
/// the model). CPU and CUDA devices have no such limit: nothing to check.
pub fn check_parameters_fit<B: burn::tensor::backend::Backend, M: burn::module::Module<B>>(
    resolved: Resolved,
    model: &M,
    context: &str,
) -> Result<()> {
    let Resolved::Wgpu { adapter, precision } = resolved else {
        return Ok(());
    };
    // Shapes are read lazily: building `model` on the CPU allocated none of its large tensors.
    let params = caplab_models::encoder::weights::expected_torchvision_params(model);
    let bytes_per_value: u64 = if precision.is_f32() { 4 } else { 2 };
    let Some((path, shape, bytes)) = params
        .into_iter()
        .map(|(path, shape)| {
            let bytes = shape.iter().product::<usize>() as u64 * bytes_per_value;
            (path, shape, bytes)
        })
        .max_by_key(|(_, _, bytes)| *bytes)
    else {
        return Ok(());
    };
    let limit = adapter_binding_limit(adapter);
    if bytes > limit {
        bail!(
            "{context}: parameter {path} {shape:?} takes {:.0} MB in {}, more than one tensor \
             may take on wgpu:{} {}({:.0} MiB, the adapter's max_storage_buffer_binding_size); \
             choose a smaller model or another device (`caplab devices` lists each adapter's \
             limit; GPUs allow 2-4 GiB)",
            bytes as f64 / 1e6,
            precision.name(),
            adapter.index,
            adapter_name(adapter),
            limit as f64 / (1u64 << 20) as f64
        );
    }
    Ok(())
}

/// [`check_parameters_fit`] for a captioner of `model` over `vocab` words, built lazily on the
/// CPU; the message names the encoder.
pub fn check_model_fits(
    resolved: Resolved,
    model: &caplab_models::ModelSpec,
    vocab: usize,
) -> Result<()> {
    if !matches!(resolved, Resolved::Wgpu { .. }) {
        return Ok(());
    }
    let captioner = model.init::<Cpu>(vocab, &Default::default());
    check_parameters_fit(
        resolved,
        &captioner,
        &format!("model.encoder.arch = \"{}\"", model.encoder.arch),
    )
}

/// What to tell the user when a panic's `message` is cubecl failing to allocate one buffer
/// (`IoError::BufferTooBig`, "can't allocate buffer of size: N"): an activation too large for a
/// wgpu adapter's per-tensor limit, or a CUDA GPU out of memory. Parameters are checked before a
/// run starts ([`check_parameters_fit`]); activations grow with the batch and the image size, so
/// they can only fail here. `None` for any other panic.
pub fn buffer_too_big_hint(message: &str) -> Option<String> {
    let size = if let Some(rest) = message.split("can't allocate buffer of size: ").nth(1) {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("")
    } else if message.contains("BufferTooBig") {
        message.split("size: ").nth(1).map_or("", |rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
        })
    } else {
        return None;
    };
    let what = match size.parse::<u64>() {
        Ok(bytes) => format!(
            "one buffer of {bytes} bytes ({:.0} MiB)",
            bytes as f64 / (1u64 << 20) as f64
        ),
        Err(_) => "one buffer".to_string(),
    };
    Some(format!(
        "caplab: the device could not allocate {what}. On wgpu no tensor may be larger than the \
         adapter's max_storage_buffer_binding_size (`caplab devices` lists it; Mesa's lavapipe \
         allows 128 MiB); on CUDA the GPU's memory is full. Activations grow with the batch and \
         the image: lower train.batch_size or eval.batch_size (`--batch-size` for `caplab \
         features`) or data.image_size, or use a device with more room."
    ))
}

/// Whether a thread named `name` is one of cubecl's device service threads (`DSU-…`, `DSD-…`),
/// where burn's GPU backends run their work. cubecl catches a panic there, logs "Task failed" and
/// lets the caller go on with tensors whose kernels never ran: a command would finish with wrong
/// numbers and exit 0. caplab's panic hook stops the process instead.
pub fn is_device_thread(name: Option<&str>) -> bool {
    name.is_some_and(|n| n.starts_with("DSU-") || n.starts_with("DSD-"))
}

/// The most bytes one tensor may take on `adapter`.
fn adapter_binding_limit(adapter: AdapterRef) -> u64 {
    #[cfg(feature = "wgpu")]
    {
        self::wgpu::adapters()
            .get(adapter.index)
            .map_or(u64::MAX, |a| a.max_binding_bytes)
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = adapter;
        u64::MAX
    }
}

/// `"<adapter name> "` for reports, or nothing without the feature.
fn adapter_name(adapter: AdapterRef) -> String {
    #[cfg(feature = "wgpu")]
    {
        self::wgpu::adapters()
            .get(adapter.index)
            .map(|a| format!("{} ", a.name))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = adapter;
        String::new()
    }
}

/// Evaluates `$body` with the type `$b` bound to the backend `$resolved` names and `$device` to a
/// reference to its device: the CPU backend, or in a `--features cuda` build CUDA GPU `index` in
/// f32, bf16 or f16 (without the feature, CUDA is an error). The one backend dispatch of
/// `caplab run`, `eval`, `caption` and `features` (exported for the GPU benchmark examples).
#[macro_export]
macro_rules! with_backend {
    ($resolved:expr, $b:ident, $device:ident => $body:expr) => {
        match $resolved {
            $crate::backend::Resolved::Cpu => {
                type $b = $crate::backend::Cpu;
                let $device: burn::tensor::Device<$b> = Default::default();
                let $device = &$device;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::Resolved::Cuda { index, precision } => {
                let cuda = burn::backend::cuda::CudaDevice::new(index);
                match precision {
                    $crate::spec::Precision::F32 => {
                        type $b = $crate::backend::Gpu;
                        let $device = &cuda;
                        $body
                    }
                    $crate::spec::Precision::Bf16 => {
                        type $b = $crate::backend::GpuBf16;
                        let $device = &cuda;
                        $body
                    }
                    $crate::spec::Precision::F16 => {
                        type $b = $crate::backend::GpuF16;
                        let $device = &cuda;
                        $body
                    }
                }
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::Resolved::Cuda { .. } => {
                anyhow::bail!("this binary was built without CUDA")
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::Resolved::Wgpu { adapter, precision } => {
                let wgpu = $crate::backend::wgpu::device(adapter);
                match precision {
                    $crate::spec::Precision::F32 => {
                        type $b = $crate::backend::Wgpu;
                        let $device = &wgpu;
                        $body
                    }
                    $crate::spec::Precision::F16 => {
                        type $b = $crate::backend::WgpuF16;
                        let $device = &wgpu;
                        $body
                    }
                    $crate::spec::Precision::Bf16 => {
                        anyhow::bail!("bf16 is CUDA-only: burn's wgpu backend has no bfloat16")
                    }
                }
            }
            #[cfg(not(feature = "wgpu"))]
            $crate::backend::Resolved::Wgpu { .. } => {
                anyhow::bail!("this binary was built without wgpu")
            }
        }
    };
}
pub use with_backend;

/// Whether this binary was built with CUDA support.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Whether this binary was built with burn's wgpu backend (`wgpu`, `vulkan` or `metal` feature).
pub const WGPU_BUILT: bool = cfg!(feature = "wgpu");

/// Resolves the `[experiment]` section's `device`, `precision` and `devices` against this binary
/// and machine. `auto` never fails in f32; a CUDA ordinal or wgpu adapter this machine lacks is
/// an error.
pub fn resolve(exp: &ExperimentSpec) -> Result<Resolved> {
    resolve_with(exp, cuda_device_count)
}

/// The wgpu adapter `choice` names and whether it has shader f16, or an error naming `key`
/// (and listing the adapters).
#[cfg(feature = "wgpu")]
fn wgpu_adapter(choice: WgpuChoice, key: &str) -> Result<(AdapterRef, bool)> {
    let a = self::wgpu::choose(choice, key, self::wgpu::adapters())?;
    Ok((a.reference(), a.f16))
}

/// Without the feature: an error saying how to build it.
#[cfg(not(feature = "wgpu"))]
fn wgpu_adapter(choice: WgpuChoice, key: &str) -> Result<(AdapterRef, bool)> {
    bail!(
        "{key} = \"{}\" but this caplab binary was built without wgpu; rebuild with \
         `cargo build --release --features vulkan` (Linux) or `--features metal` (macOS) \
         (docs/gpu.md), or set {key} to \"cpu\" or \"auto\"",
        DeviceChoice::Wgpu(choice)
    )
}

/// The first wgpu GPU adapter (never a CPU-type one), for `auto`.
#[cfg(feature = "wgpu")]
fn first_wgpu_gpu() -> Option<(AdapterRef, bool)> {
    self::wgpu::adapters()
        .iter()
        .find(|a| a.kind.is_gpu())
        .map(|a| (a.reference(), a.f16))
}

/// Without the feature there is none.
#[cfg(not(feature = "wgpu"))]
fn first_wgpu_gpu() -> Option<(AdapterRef, bool)> {
    None
}

/// [`resolve`] for command-line flags (`caplab features`, the benchmark examples): errors name
/// `--device` and `--precision` instead of the spec keys.
pub fn resolve_flags(device: DeviceChoice, precision: Precision) -> Result<Resolved> {
    let exp = ExperimentSpec {
        name: "flags".into(),
        seed: 0,
        device,
        precision,
        devices: None,
        runs_dir: Default::default(),
        seeds: Vec::new(),
    };
    resolve(&exp).map_err(|e| {
        let msg = format!("{e:#}")
            .replace("invalid spec: ", "")
            .replace("key experiment.precision", "--precision")
            .replace("experiment.precision", "--precision")
            .replace("experiment.device", "--device");
        anyhow::anyhow!("{msg}")
    })
}

/// [`resolve`] with the CUDA device count from `count` (called at most once, and only when CUDA
/// is built in and asked for).
pub fn resolve_with(exp: &ExperimentSpec, count: impl FnOnce() -> usize) -> Result<Resolved> {
    exp.validate_device()?;
    let precision = exp.precision;
    if let Some(devices) = exp.devices.as_ref().filter(|d| d.len() > 1) {
        // Spec key validated (spec/validate.rs), training strategy not yet wired: see docs/gpu.md.
        bail!(
            "experiment.devices = {devices:?}: data-parallel training is not yet wired in caplab \
             (it needs burn's `distributed` feature and burn-train's DDP strategy, issue 15); \
             train on one GPU with experiment.device = \"cuda:N\" and no experiment.devices"
        );
    }
    match exp.device {
        DeviceChoice::Cpu => Ok(Resolved::Cpu),
        DeviceChoice::Cuda(index) => {
            if !CUDA_BUILT {
                bail!(
                    "experiment.device = \"{}\" but this caplab binary was built without CUDA; \
                     rebuild with `cargo build --release --features cuda` (docs/gpu.md), \
                     or set experiment.device to \"cpu\" or \"auto\"",
                    exp.device
                );
            }
            let n = count();
            if n == 0 {
                bail!(
                    "experiment.device = \"{}\" but no CUDA GPU answered on this machine; use \
                     \"cpu\" or \"auto\"",
                    exp.device
                );
            }
            let wanted = exp
                .devices
                .iter()
                .flatten()
                .copied()
                .chain([index])
                .max()
                .unwrap_or(index);
            if wanted >= n {
                let key = if wanted == index {
                    "experiment.device"
                } else {
                    "experiment.devices"
                };
                bail!(
                    "{key}: CUDA device {wanted} does not exist: this machine has {n} CUDA \
                     device(s), cuda:0 to cuda:{} (CUDA_VISIBLE_DEVICES renumbers them)",
                    n - 1
                );
            }
            Ok(Resolved::Cuda { index, precision })
        }
        DeviceChoice::Wgpu(choice) => {
            let (adapter, f16) = wgpu_adapter(choice, "experiment.device")?;
            check_wgpu_precision(precision, f16, exp.device)?;
            Ok(Resolved::Wgpu { adapter, precision })
        }
        DeviceChoice::Auto => {
            if CUDA_BUILT && count() > 0 {
                return Ok(Resolved::Cuda {
                    index: 0,
                    precision,
                });
            }
            if let Some((adapter, f16)) = first_wgpu_gpu() {
                if precision != Precision::Bf16 && (precision.is_f32() || f16) {
                    return Ok(Resolved::Wgpu { adapter, precision });
                }
            }
            if !precision.is_f32() {
                bail!(
                    "experiment.precision = {:?} but experiment.device = \"auto\" resolved to \
                     the CPU ({}), and the CPU backend trains in f32: set experiment.precision = \
                     \"f32\" or run on a GPU",
                    precision.name(),
                    match (CUDA_BUILT, WGPU_BUILT) {
                        (true, true) => "no CUDA GPU answered, and no wgpu GPU adapter that can",
                        (true, false) => "no CUDA GPU answered",
                        (false, true) => "no wgpu GPU adapter that can",
                        (false, false) => "this binary was built without CUDA or wgpu",
                    }
                );
            }
            Ok(Resolved::Cpu)
        }
    }
}

/// What this build can run on, a line each, for `caplab devices`: the CPU, the CUDA devices and
/// the wgpu adapters (with type and f16 support), then what `auto` picks.
pub fn device_lines() -> Vec<String> {
    let mut lines = vec![format!(
        "cpu        burn Flex backend, {} threads, f32",
        rayon::current_num_threads()
    )];
    if CUDA_BUILT {
        let n = cuda_device_count();
        if n == 0 {
            lines.push("cuda       no CUDA GPU answered".into());
        }
        for i in 0..n {
            lines.push(format!("cuda:{i}     burn CUDA backend, f32, bf16, f16"));
        }
    } else {
        lines.push("cuda       not built in (cargo build --release --features cuda)".into());
    }
    #[cfg(feature = "wgpu")]
    {
        let list = self::wgpu::adapters();
        if list.is_empty() {
            lines.push(format!(
                "wgpu       no adapter: {}",
                self::wgpu::no_adapter_hint()
            ));
        }
        lines.extend(list.iter().map(|a| a.line()));
    }
    #[cfg(not(feature = "wgpu"))]
    lines.push(
        "wgpu       not built in (cargo build --release --features vulkan, or metal on macOS)"
            .into(),
    );
    let auto = ExperimentSpec {
        name: "devices".into(),
        seed: 0,
        device: DeviceChoice::Auto,
        precision: Precision::F32,
        devices: None,
        runs_dir: Default::default(),
        seeds: Vec::new(),
    };
    match resolve(&auto) {
        Ok(r) => lines.push(format!("auto       -> {}", r.describe())),
        Err(e) => lines.push(format!("auto       -> error: {e:#}")),
    }
    lines
}

/// `f16` needs an adapter with shader f16; `bf16` is CUDA-only (spec validation says so first).
fn check_wgpu_precision(precision: Precision, f16: bool, device: DeviceChoice) -> Result<()> {
    match precision {
        Precision::F32 => Ok(()),
        Precision::F16 if f16 => Ok(()),
        Precision::F16 => bail!(
            "experiment.precision = \"f16\" but the adapter experiment.device = \"{device}\" \
             names has no shader f16 (`caplab devices` lists each adapter's f16 support); set \
             experiment.precision = \"f32\""
        ),
        Precision::Bf16 => bail!(
            "experiment.precision = \"bf16\" is CUDA-only: burn's wgpu backend has no bfloat16 \
             (experiment.device = \"{device}\")"
        ),
    }
}

/// How many CUDA devices answer (0 when none or no driver), probed once per process without
/// letting burn-cuda's panic escape: GPU 0 is created only when the driver's device files exist,
/// and the count is asked of CUDA only after GPU 0 answered.
#[cfg(feature = "cuda")]
pub fn cuda_device_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        use burn::tensor::backend::Backend;
        use burn::tensor::Tensor;
        let driver = ["/dev/nvidiactl", "/dev/nvidia0"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        if !driver {
            return 0;
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let count = std::panic::catch_unwind(|| {
            let device = burn::backend::cuda::CudaDevice::new(0);
            let t = Tensor::<Gpu, 1>::ones([1], &device);
            if t.into_data().iter::<f32>().next() != Some(1.0) {
                return 0;
            }
            // cubecl asks cudarc's `CudaContext::device_count` (honours CUDA_VISIBLE_DEVICES).
            <Gpu as Backend>::device_count(0).max(1)
        })
        .unwrap_or(0);
        std::panic::set_hook(hook);
        count
    })
}

/// Without the `cuda` feature there is never a CUDA device.
#[cfg(not(feature = "cuda"))]
pub fn cuda_device_count() -> usize {
    0
}

/// Whether a CUDA GPU answers (always false without the `cuda` feature).
pub fn cuda_available() -> bool {
    CUDA_BUILT && cuda_device_count() > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(device: &str, precision: Precision, devices: Option<Vec<usize>>) -> ExperimentSpec {
        ExperimentSpec {
            name: "t".into(),
            seed: 1,
            device: DeviceChoice::parse(device).unwrap(),
            precision,
            devices,
            runs_dir: "runs".into(),
            seeds: vec![],
        }
    }

    fn err(r: Result<Resolved>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn cpu_and_auto_without_a_gpu_resolve_to_the_cpu_in_f32_only() {
        let never = || panic!("the CUDA count is not asked for on the CPU");
        let cpu = exp("cpu", Precision::F32, None);
        assert_eq!(resolve_with(&cpu, never).unwrap(), Resolved::Cpu);
        assert_eq!(Resolved::Cpu.describe(), "cpu (burn Flex backend)");
        let auto = exp("auto", Precision::F32, None);
        assert_eq!(resolve_with(&auto, || 0).unwrap(), Resolved::Cpu);
        let e = err(resolve_with(&exp("auto", Precision::Bf16, None), || 0));
        assert!(e.contains("experiment.precision = \"bf16\""), "{e}");
        assert!(e.contains("trains in f32"), "{e}");
        let e = err(resolve_with(&exp("cpu", Precision::F16, None), never));
        assert!(e.contains("key experiment.precision"), "{e}");
    }

    #[test]
    fn cuda_indices_are_checked_against_the_device_count() {
        let cuda1 = exp("cuda:1", Precision::Bf16, None);
        if CUDA_BUILT {
            assert_eq!(
                resolve_with(&cuda1, || 2).unwrap(),
                Resolved::Cuda {
                    index: 1,
                    precision: Precision::Bf16
                }
            );
            let e = err(resolve_with(&cuda1, || 1));
            assert!(e.contains("CUDA device 1 does not exist"), "{e}");
            assert!(e.contains("has 1 CUDA device(s), cuda:0 to cuda:0"), "{e}");
            let e = err(resolve_with(&cuda1, || 0));
            assert!(e.contains("no CUDA GPU answered"), "{e}");
            let auto = exp("auto", Precision::F32, None);
            assert_eq!(
                resolve_with(&auto, || 1).unwrap(),
                Resolved::Cuda {
                    index: 0,
                    precision: Precision::F32
                }
            );
        } else {
            let e = err(resolve_with(&cuda1, || 2));
            assert!(e.contains("experiment.device = \"cuda:1\""), "{e}");
            assert!(e.contains("built without CUDA"), "{e}");
        }
        let r = Resolved::Cuda {
            index: 3,
            precision: Precision::F32,
        };
        assert_eq!(r.describe(), "cuda:3 (burn CUDA backend)");
        let r = Resolved::Cuda {
            index: 0,
            precision: Precision::Bf16,
        };
        assert_eq!(r.describe(), "cuda:0 (burn CUDA backend, bf16)");
    }

    #[test]
    fn several_devices_are_validated_then_refused_as_not_yet_wired() {
        let ddp = exp("cuda:0", Precision::F32, Some(vec![0, 1]));
        let e = err(resolve_with(&ddp, || 2));
        assert!(e.contains("not yet wired"), "{e}");
        let e = err(resolve_with(
            &exp("cuda", Precision::F32, Some(vec![])),
            || 2,
        ));
        assert!(
            e.contains("key experiment.devices must list at least one"),
            "{e}"
        );
        // One device equal to the main device is the single-GPU run.
        let one = exp("cuda:1", Precision::F32, Some(vec![1]));
        if CUDA_BUILT {
            assert!(resolve_with(&one, || 2).is_ok());
            let e = err(resolve_with(&one, || 1));
            assert!(e.contains("does not exist"), "{e}");
        }
    }

    #[test]
    fn a_buffer_too_big_panic_gets_a_hint_and_other_panics_none() {
        let hint = buffer_too_big_hint(
            "called `Result::unwrap()` on an `Err` value: can't allocate buffer of size: \
             205520896\nbacktrace",
        )
        .expect("cubecl's BufferTooBig message");
        assert!(hint.contains("205520896 bytes (196 MiB)"), "{hint}");
        assert!(hint.contains("max_storage_buffer_binding_size"), "{hint}");
        assert!(hint.contains("train.batch_size"), "{hint}");
        let debug = buffer_too_big_hint("Err(BufferTooBig { size: 4096, backtrace: .. })")
            .expect("the Debug form");
        assert!(debug.contains("4096 bytes"), "{debug}");
        assert_eq!(buffer_too_big_hint("index out of bounds"), None);
    }

    #[test]
    fn parameters_are_not_checked_off_wgpu() {
        let encoder =
            caplab_models::encoder::EncoderConfig::new(caplab_models::encoder::Arch::Vgg11)
                .init::<Cpu>(&Default::default());
        check_parameters_fit(Resolved::Cpu, &encoder, "--encoder vgg11")
            .expect("no limit on the CPU");
    }

    #[test]
    fn only_cubecls_device_threads_are_device_threads() {
        assert!(is_device_thread(Some("DSD-4-0")));
        assert!(is_device_thread(Some("DSU-1-2")));
        assert!(!is_device_thread(Some("main")));
        assert!(!is_device_thread(None));
    }
}
