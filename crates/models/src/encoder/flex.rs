//! Shared pieces of the encoders' own CPU kernels ([`super::conv`], [`super::batch_norm_cpu`]):
//! which backend takes them, moving tensors to it, and buffers filled in parallel.
//!
//! The encoders are generic over the backend. Their convolutions and batch norms check at run
//! time (`TypeId`) whether the backend is burn's CPU backend `Flex`, or `Autodiff<Flex>` as
//! `caplab run` trains with, and only then move the tensors to that concrete type ([`cast`])
//! and run the kernels, whose every pass is split over rayon's threads. Other backends (CUDA,
//! NdArray in tests) run burn's own ops.

use std::any::{Any, TypeId};

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// The autodiff backend `caplab run` trains with on the CPU.
pub(super) type CpuTrain = Autodiff<Flex>;

/// Whether `B` is `Autodiff<Flex>`.
pub(super) fn is_cpu_train<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<CpuTrain>()
}

/// Whether `B` is `Flex`.
pub(super) fn is_cpu<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>()
}

/// Moves a value to the type it is (after a `TypeId` check); `Err` gives it back otherwise.
pub(super) fn cast<T: 'static, U: 'static>(value: T) -> Result<U, Box<dyn Any>> {
    (Box::new(value) as Box<dyn Any>)
        .downcast::<U>()
        .map(|b| *b)
}

/// `n` zeros, written in parallel (a large `vec![0.0; n]` is one serial `memset`).
pub(super) fn zeroed(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    v.spare_capacity_mut()
        .par_chunks_mut(1 << 16)
        .for_each(|c| c.fill(std::mem::MaybeUninit::new(0.0)));
    // SAFETY: the loop above initialised all `n` elements of the capacity.
    unsafe { v.set_len(n) };
    v
}

/// The tensor with contiguous `f32` values (shares the buffer when it already has them).
pub(super) fn contiguous(t: &FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "the CPU kernels run in f32");
    t.to_contiguous()
}

/// Asserts `ours` is within `tolerance × max(1, max |reference|)` of `reference`, element by
/// element (the CPU kernels' tests against burn's ops).
#[cfg(test)]
pub(super) fn assert_close(ours: &[f32], reference: &[f32], tolerance: f32, what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let scale = reference.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * scale,
            "{what}: element {i} is {a}, burn's ops give {b}"
        );
    }
}
