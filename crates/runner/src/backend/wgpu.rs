//! The wgpu adapters this binary can see: listed once per process (`caplab devices`), chosen by
//! `experiment.device = "wgpu…"`, and turned into burn's [`WgpuDevice`].
//!
//! Adapters are listed with the graphics API burn's wgpu backend uses in this build (Vulkan on
//! Linux with `--features vulkan`, Metal with `--features metal`), in the order wgpu enumerates
//! them, which is also the order cubecl picks `DiscreteGpu(n)`, `IntegratedGpu(n)`… from, so
//! adapter `wgpu:N` and the device burn creates for it are the same.

use std::future::Future;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
use burn::backend::wgpu::WgpuDevice;

use crate::spec::WgpuChoice;

/// The type of an adapter, as wgpu reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterKind {
    /// A discrete GPU.
    Discrete,
    /// A GPU sharing the CPU's memory.
    Integrated,
    /// A GPU of a virtual machine.
    Virtual,
    /// A software implementation on the CPU (Mesa's lavapipe, SwiftShader).
    Cpu,
    /// Anything else.
    Other,
}

impl AdapterKind {
    fn of(t: wgpu::DeviceType) -> Self {
        match t {
            wgpu::DeviceType::DiscreteGpu => Self::Discrete,
            wgpu::DeviceType::IntegratedGpu => Self::Integrated,
            wgpu::DeviceType::VirtualGpu => Self::Virtual,
            wgpu::DeviceType::Cpu => Self::Cpu,
            wgpu::DeviceType::Other => Self::Other,
        }
    }

    /// `discrete GPU`, `integrated GPU`, `virtual GPU`, `CPU` or `other`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Discrete => "discrete GPU",
            Self::Integrated => "integrated GPU",
            Self::Virtual => "virtual GPU",
            Self::Cpu => "CPU",
            Self::Other => "other",
        }
    }

    /// Whether `"wgpu"` and `"auto"` may pick it: GPUs only, never a CPU-type adapter.
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::Discrete | Self::Integrated | Self::Virtual)
    }
}

/// One adapter.
#[derive(Clone, Debug)]
pub struct Adapter {
    /// Its place in the list: `wgpu:N`.
    pub index: usize,
    /// Its place among the adapters of its kind (what cubecl's `WgpuDevice` variants count).
    pub nth: usize,
    /// Its type.
    pub kind: AdapterKind,
    /// The name the driver gives, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// The driver and its version.
    pub driver: String,
    /// The graphics API (`Vulkan`, `Metal`…).
    pub api: String,
    /// Whether shaders may use f16 (`experiment.precision = "f16"`).
    pub f16: bool,
    /// The largest buffer a shader may bind, in bytes: no tensor may be larger (Mesa's lavapipe:
    /// 128 MiB, less than VGG's 411 MB `fc6` weight, which only the pooled feature needs).
    pub max_binding_bytes: u64,
}

/// A chosen adapter, small enough to copy through the backend dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterRef {
    /// Its place in the list: `wgpu:N`.
    pub index: usize,
    /// Its place among the adapters of its kind.
    pub nth: usize,
    /// Its type.
    pub kind: AdapterKind,
}

impl Adapter {
    /// The reference the backend dispatch carries.
    pub fn reference(&self) -> AdapterRef {
        AdapterRef {
            index: self.index,
            nth: self.nth,
            kind: self.kind,
        }
    }

    /// One line for `caplab devices` and error messages.
    pub fn line(&self) -> String {
        format!(
            "wgpu:{}  {} ({}, {}{}), f16 {}, tensors up to {} MiB",
            self.index,
            self.name,
            self.kind.name(),
            self.api,
            if self.driver.is_empty() {
                String::new()
            } else {
                format!(", {}", self.driver)
            },
            if self.f16 { "yes" } else { "no" },
            self.max_binding_bytes >> 20
        )
    }
}

/// burn's device for an adapter of [`adapters`]: always `WgpuDevice::DefaultDevice`, pointed at
/// the adapter through cubecl's `CUBECL_WGPU_DEFAULT_DEVICE`.
///
/// burn-train 0.21 loads a checkpoint onto the backend's *default* device
/// (`checkpointer.load_checkpoint(learner, &Default::default(), …)` in its supervised strategy),
/// so `caplab resume` and the start of SCST would put the model on a second device, and cubecl's
/// wgpu runtime cannot move tensors between devices (cubecl-wgpu does not implement `send`/`recv`). With
/// the default device *being* the run's adapter, there is one device. One wgpu adapter per
/// process, then: the first one asked for wins, and asking for another is a panic naming both
/// (`resolve` hands out one adapter per command).
pub fn device(adapter: AdapterRef) -> WgpuDevice {
    static CHOSEN: OnceLock<AdapterRef> = OnceLock::new();
    let chosen = *CHOSEN.get_or_init(|| {
        // Before any wgpu device exists (the first call), on the thread resolving the device.
        std::env::set_var("CUBECL_WGPU_DEFAULT_DEVICE", cubecl_name(adapter));
        adapter
    });
    assert_eq!(
        chosen, adapter,
        "one wgpu adapter per process: wgpu:{} is in use, wgpu:{} was asked for",
        chosen.index, adapter.index
    );
    WgpuDevice::DefaultDevice
}

/// How `CUBECL_WGPU_DEFAULT_DEVICE` names an adapter: `DiscreteGpu(n)`, `IntegratedGpu(n)`,
/// `VirtualGpu(n)` (the n-th of its kind in wgpu's order) or `Cpu` (cubecl selects the first CPU
/// adapter; [`choose`] only ever picks that one).
fn cubecl_name(adapter: AdapterRef) -> String {
    match adapter.kind {
        AdapterKind::Discrete => format!("DiscreteGpu({})", adapter.nth),
        AdapterKind::Integrated => format!("IntegratedGpu({})", adapter.nth),
        AdapterKind::Virtual => format!("VirtualGpu({})", adapter.nth),
        AdapterKind::Cpu | AdapterKind::Other => "Cpu".to_string(),
    }
}

/// The graphics API burn's wgpu backend uses in this build.
pub fn api() -> wgpu::Backend {
    AutoGraphicsApi::backend()
}

/// Every adapter wgpu lists for [`api`], once per process (an empty list when no driver or no
/// Vulkan loader is installed: wgpu reports that as no adapters, not as an error).
pub fn adapters() -> &'static [Adapter] {
    static LIST: OnceLock<Vec<Adapter>> = OnceLock::new();
    LIST.get_or_init(|| {
        let backend = api();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: backend.into(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let found = block_on(instance.enumerate_adapters(backend.into()));
        let mut seen: Vec<AdapterKind> = Vec::new();
        found
            .iter()
            .enumerate()
            .map(|(index, a)| {
                let info = a.get_info();
                let kind = AdapterKind::of(info.device_type);
                let nth = seen.iter().filter(|k| **k == kind).count();
                seen.push(kind);
                let driver = [info.driver.as_str(), info.driver_info.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                Adapter {
                    index,
                    nth,
                    kind,
                    name: info.name,
                    driver,
                    api: format!("{:?}", info.backend),
                    f16: a.features().contains(wgpu::Features::SHADER_F16),
                    max_binding_bytes: a.limits().max_storage_buffer_binding_size,
                }
            })
            .collect()
    })
}

/// The adapter `choice` names, or an error naming `key` and listing the adapters.
pub fn choose(choice: WgpuChoice, key: &str, list: &[Adapter]) -> Result<Adapter> {
    let spelled = crate::spec::DeviceChoice::Wgpu(choice).to_string();
    if list.is_empty() {
        bail!(
            "{key} = \"{spelled}\" but wgpu found no adapter: {}",
            no_adapter_hint()
        );
    }
    let listing = || {
        list.iter()
            .map(|a| format!("  {}", a.line()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let found = match choice {
        WgpuChoice::Gpu => list.iter().find(|a| a.kind.is_gpu()).ok_or_else(|| {
            anyhow::anyhow!(
                "{key} = \"wgpu\" takes a GPU adapter and this machine has none (a CPU-type \
                 adapter such as lavapipe is used only when named: \"wgpu:cpu\" or \"wgpu:N\"); \
                 the adapters:\n{}",
                listing()
            )
        })?,
        WgpuChoice::CpuAdapter => list
            .iter()
            .find(|a| a.kind == AdapterKind::Cpu)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{key} = \"wgpu:cpu\" but no CPU-type adapter (such as Mesa's lavapipe, \
                     Debian/Ubuntu package mesa-vulkan-drivers) is installed; the adapters:\n{}",
                    listing()
                )
            })?,
        WgpuChoice::Index(n) => list.get(n).ok_or_else(|| {
            anyhow::anyhow!(
                "{key} = \"wgpu:{n}\": there is no adapter {n}; this machine has {} \
                 (wgpu:0 to wgpu:{}):\n{}",
                list.len(),
                list.len() - 1,
                listing()
            )
        })?,
    };
    if found.kind == AdapterKind::Other {
        bail!(
            "{key} = \"{spelled}\": adapter {} ({}) is of no type burn can select; the \
             adapters:\n{}",
            found.index,
            found.name,
            listing()
        );
    }
    if found.kind == AdapterKind::Cpu && found.nth > 0 {
        bail!(
            "{key} = \"{spelled}\": adapter {} is the second CPU-type adapter and burn can \
             only select the first (wgpu:cpu); the adapters:\n{}",
            found.index,
            listing()
        );
    }
    Ok(found.clone())
}

/// What to install when wgpu lists no adapter: the Vulkan loader when it is missing, else a
/// driver.
pub fn no_adapter_hint() -> String {
    if api() == wgpu::Backend::Vulkan && !vulkan_loader_present() {
        "the Vulkan loader (libvulkan.so.1) is not installed: on Debian/Ubuntu `apt install \
         libvulkan1`, plus a driver (your GPU vendor's, or mesa-vulkan-drivers for Mesa's GPUs \
         and its CPU implementation lavapipe)"
            .to_string()
    } else {
        format!(
            "no {:?} driver answered: install your GPU vendor's driver (on Debian/Ubuntu, \
             mesa-vulkan-drivers gives Mesa's GPU drivers and the CPU implementation lavapipe)",
            api()
        )
    }
}

/// Whether the Vulkan loader library can be opened.
fn vulkan_loader_present() -> bool {
    ["libvulkan.so.1", "libvulkan.so"].iter().any(|name| {
        let Ok(c) = std::ffi::CString::new(*name) else {
            return false;
        };
        // SAFETY: dlopen with a valid C string; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            if handle.is_null() {
                false
            } else {
                libc::dlclose(handle);
                true
            }
        }
    })
}

/// Runs a future to completion on this thread (wgpu's native futures are ready at once).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(index: usize, nth: usize, kind: AdapterKind, f16: bool) -> Adapter {
        Adapter {
            index,
            nth,
            kind,
            name: format!("adapter {index}"),
            driver: String::new(),
            api: "Vulkan".into(),
            f16,
            max_binding_bytes: 128 << 20,
        }
    }

    #[test]
    fn wgpu_never_picks_a_cpu_adapter_unless_named() {
        let lavapipe = [adapter(0, 0, AdapterKind::Cpu, true)];
        let e = format!(
            "{:#}",
            choose(WgpuChoice::Gpu, "experiment.device", &lavapipe).unwrap_err()
        );
        assert!(
            e.contains("experiment.device = \"wgpu\" takes a GPU adapter"),
            "{e}"
        );
        assert!(
            e.contains("wgpu:0  adapter 0 (CPU, Vulkan), f16 yes"),
            "{e}"
        );
        let by_name = choose(WgpuChoice::CpuAdapter, "experiment.device", &lavapipe).unwrap();
        assert_eq!(by_name.index, 0);
        let by_index = choose(WgpuChoice::Index(0), "experiment.device", &lavapipe).unwrap();
        assert_eq!(by_index.kind, AdapterKind::Cpu);
        let mixed = [
            adapter(0, 0, AdapterKind::Cpu, true),
            adapter(1, 0, AdapterKind::Integrated, false),
            adapter(2, 0, AdapterKind::Discrete, true),
        ];
        let gpu = choose(WgpuChoice::Gpu, "experiment.device", &mixed).unwrap();
        assert_eq!(gpu.index, 1, "the first GPU in wgpu's order");
        assert_eq!(cubecl_name(gpu.reference()), "IntegratedGpu(0)");
        assert_eq!(cubecl_name(mixed[0].reference()), "Cpu");
    }

    #[test]
    fn a_missing_index_lists_the_adapters() {
        let list = [
            adapter(0, 0, AdapterKind::Discrete, true),
            adapter(1, 1, AdapterKind::Discrete, true),
        ];
        let e = format!(
            "{:#}",
            choose(WgpuChoice::Index(5), "experiment.device", &list).unwrap_err()
        );
        assert!(
            e.contains("\"wgpu:5\": there is no adapter 5; this machine has 2 (wgpu:0 to wgpu:1)"),
            "{e}"
        );
        assert!(e.contains("wgpu:1  adapter 1 (discrete GPU"), "{e}");
        assert_eq!(cubecl_name(list[1].reference()), "DiscreteGpu(1)");
        let e = format!(
            "{:#}",
            choose(WgpuChoice::Gpu, "--device", &[]).unwrap_err()
        );
        assert!(
            e.contains("--device = \"wgpu\" but wgpu found no adapter"),
            "{e}"
        );
    }
}
