//! [`BatchNorm`](super::BatchNorm) training forward and backward on `Autodiff<Flex>`, each pass
//! split over rayon's threads.
//!
//! Built from burn ops, a training batch norm is a dozen element-wise ops and reductions
//! forward and as many backward, which burn-flex 0.21 runs on the calling thread: in the
//! baseline's training step they kept the main thread busy while the other core waited. Here,
//! for `x` `[N, C, L]` and `M = N·L` values per channel:
//! - forward: per channel (in parallel) `μ`, biased `σ²` (two passes, summed in `f64`),
//!   `α = γ / √(σ² + ε)`, `β' = β − μ·α`; then per `[L]` plane (in parallel) `y = x·α + β'`,
//!   the formula of the generic path and of PyTorch's CPU kernel;
//! - backward, with `x̂ = (x − μ)/√(σ² + ε)`: `dβ = Σ dy`, `dγ = Σ dy·x̂` per channel, then
//!   `dx = α·(dy − dβ/M − x̂·dγ/M)` per plane.
//!
//! Each sum runs over one channel in a fixed order, so results do not depend on the number of
//! threads. `batch_norm_cpu_matches_the_generic_path` checks output, statistics and the three
//! gradients against the burn-op path.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex::{contiguous, zeroed, CpuTrain};

/// Per-channel statistics of a training batch norm.
#[derive(Clone, Debug)]
pub(super) struct Statistics {
    /// Batch mean `μ` `[C]`.
    pub mean: Vec<f32>,
    /// Biased batch variance `σ²` `[C]`.
    pub var: Vec<f32>,
}

/// `y` `[N, C, L]` and the batch statistics of `x` `[N, C, L]` normalised with scale `gamma`
/// and shift `beta` `[C]`, recorded for autodiff.
pub(super) fn train(
    x: Tensor<CpuTrain, 3>,
    gamma: Tensor<CpuTrain, 1>,
    beta: Tensor<CpuTrain, 1>,
    epsilon: f64,
) -> (Tensor<CpuTrain, 3>, Statistics) {
    let [n, c, l] = x.dims();
    let x = x.into_primitive().tensor();
    let gamma = gamma.into_primitive().tensor();
    let beta = beta.into_primitive().tensor();
    let xs = contiguous(&x.primitive);
    let gs = contiguous(&gamma.primitive);
    let bs = contiguous(&beta.primitive);
    let (xv, gv, bv): (&[f32], &[f32], &[f32]) = (xs.storage(), gs.storage(), bs.storage());

    let m = (n * l) as f64;
    let stats: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let planes = || (0..n).map(move |i| &xv[(i * c + ch) * l..(i * c + ch + 1) * l]);
            let sum: f64 = planes()
                .map(|p| p.iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / m;
            let sq: f64 = planes()
                .map(|p| p.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>())
                .sum();
            (mean, sq / m)
        })
        .collect();
    let inv_std: Vec<f64> = stats
        .iter()
        .map(|&(_, var)| 1.0 / (var + epsilon).sqrt())
        .collect();
    let alpha: Vec<f32> = (0..c)
        .map(|ch| (gv[ch] as f64 * inv_std[ch]) as f32)
        .collect();
    let shift: Vec<f32> = (0..c)
        .map(|ch| bv[ch] - stats[ch].0 as f32 * alpha[ch])
        .collect();
    let mut y = zeroed(n * c * l);
    y.par_chunks_mut(l.max(1))
        .enumerate()
        .for_each(|(plane, out)| {
            let ch = plane % c;
            let src = &xv[plane * l..(plane + 1) * l];
            for (o, &v) in out.iter_mut().zip(src) {
                *o = v * alpha[ch] + shift[ch];
            }
        });
    let y = FlexTensor::from_data(TensorData::new(y, [n, c, l]));
    let statistics = Statistics {
        mean: stats.iter().map(|s| s.0 as f32).collect(),
        var: stats.iter().map(|s| s.1 as f32).collect(),
    };

    let state = State {
        mean: statistics.mean.clone(),
        inv_std: inv_std.iter().map(|&v| v as f32).collect(),
        gamma: gv.to_vec(),
        dims: [n, c, l],
    };
    let out = match BatchNormBackward
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            prep.finish((x_state, state), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (
        Tensor::from_primitive(TensorPrimitive::Float(out)),
        statistics,
    )
}

/// What the backward needs besides `x`.
#[derive(Clone, Debug)]
struct State {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
    dims: [usize; 3],
}

/// Backward of [`train`].
#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = (NodeId, State);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, s) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let (xs, dys) = (contiguous(&x), contiguous(&grad));
        let (xv, dy): (&[f32], &[f32]) = (xs.storage(), dys.storage());
        let [n, c, l] = s.dims;

        // Per channel: Σ dy and Σ dy·x̂.
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, inv) = (s.mean[ch], s.inv_std[ch]);
                (0..n).fold((0.0, 0.0), |(a, b), i| {
                    let at = (i * c + ch) * l;
                    let (gp, xp) = (&dy[at..at + l], &xv[at..at + l]);
                    let (pa, pb) = gp
                        .iter()
                        .zip(xp)
                        .fold((0.0f64, 0.0f64), |(pa, pb), (&g, &v)| {
                            (pa + g as f64, pb + (g * (v - mean) * inv) as f64)
                        });
                    (a + pa, b + pb)
                })
            })
            .collect();
        if let Some(node) = node_beta {
            let d: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(d, [c])));
        }
        if let Some(node) = node_gamma {
            let d: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(d, [c])));
        }
        if let Some(node) = node_x {
            let m = (n * l) as f64;
            let mean_dy: Vec<f32> = sums.iter().map(|s| (s.0 / m) as f32).collect();
            let mean_dy_xhat: Vec<f32> = sums.iter().map(|s| (s.1 / m) as f32).collect();
            let mut dx = zeroed(n * c * l);
            dx.par_chunks_mut(l.max(1))
                .enumerate()
                .for_each(|(plane, out)| {
                    let ch = plane % c;
                    let (mean, inv) = (s.mean[ch], s.inv_std[ch]);
                    let alpha = s.gamma[ch] * inv;
                    let at = plane * l;
                    for ((o, &g), &v) in out.iter_mut().zip(&dy[at..at + l]).zip(&xv[at..at + l]) {
                        let xhat = (v - mean) * inv;
                        *o = alpha * (g - mean_dy[ch] - xhat * mean_dy_xhat[ch]);
                    }
                });
            grads.register::<Flex>(
                node.id,
                FlexTensor::from_data(TensorData::new(dx, [n, c, l])),
            );
        }
    }
}
