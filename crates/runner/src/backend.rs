//! Backends and device choice: the CPU backend always, CUDA with the `cuda` feature.

use anyhow::{bail, Result};

use crate::spec::DeviceChoice;

/// The CPU backend used for training and evaluation (chosen by measurement, see README).
pub type Cpu = burn::backend::Flex;

/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;

/// A device the run can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The CPU backend.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

impl Resolved {
    /// A name for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Resolved::Cpu => "cpu (burn Flex backend)",
            Resolved::Cuda => "cuda:0 (burn CUDA backend)",
        }
    }
}

/// Evaluates `$body` with the type `$b` bound to the backend `$resolved` names (the CPU backend,
/// or CUDA in a `--features cuda` build; without it, CUDA is an error). The one backend dispatch
/// of `caplab run`, `eval` and `caption`.
macro_rules! with_backend {
    ($resolved:expr, $b:ident => $body:expr) => {
        match $resolved {
            $crate::backend::Resolved::Cpu => {
                type $b = $crate::backend::Cpu;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::Resolved::Cuda => {
                type $b = $crate::backend::Gpu;
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::Resolved::Cuda => {
                anyhow::bail!("this binary was built without CUDA")
            }
        }
    };
}
pub(crate) use with_backend;

/// Whether this binary was built with CUDA support.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Resolves `device` from the spec; `auto` never fails.
pub fn resolve(choice: DeviceChoice) -> Result<Resolved> {
    match choice {
        DeviceChoice::Cpu => Ok(Resolved::Cpu),
        DeviceChoice::Cuda => {
            if !CUDA_BUILT {
                bail!(
                    "experiment.device = \"cuda\" but this caplab binary was built without CUDA; \
                     rebuild with `cargo build --release --features cuda` (README: GPU), \
                     or set experiment.device to \"cpu\" or \"auto\""
                );
            }
            if !cuda_available() {
                bail!("experiment.device = \"cuda\" but no CUDA GPU answered on this machine; use \"cpu\" or \"auto\"");
            }
            Ok(Resolved::Cuda)
        }
        DeviceChoice::Auto => Ok(if CUDA_BUILT && cuda_available() {
            Resolved::Cuda
        } else {
            Resolved::Cpu
        }),
    }
}

/// Probes for a working CUDA device without letting burn-cuda's panic escape.
#[cfg(feature = "cuda")]
pub fn cuda_available() -> bool {
    use burn::tensor::Tensor;
    let driver = ["/dev/nvidiactl", "/dev/nvidia0"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !driver {
        return false;
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(|| {
        let device = burn::backend::cuda::CudaDevice::default();
        let t = Tensor::<Gpu, 1>::ones([1], &device);
        t.into_data().iter::<f32>().next() == Some(1.0)
    })
    .unwrap_or(false);
    std::panic::set_hook(hook);
    ok
}

/// Without the `cuda` feature there is never a CUDA device.
#[cfg(not(feature = "cuda"))]
pub fn cuda_available() -> bool {
    false
}
