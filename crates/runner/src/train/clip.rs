//! Gradient clipping by the global norm, as PyTorch's `torch.nn.utils.clip_grad_norm_` does.
//!
//! burn's `GradientClipping::Norm` rescales each parameter's gradient by that tensor's own norm.
//! The seeds, the peer codebases and most papers clip the **global** norm: the L2 norm of all
//! gradients taken together, `‖g‖ = sqrt(Σ_p ‖g_p‖²)`, and when it exceeds `max_norm` every
//! gradient is multiplied by `max_norm / (‖g‖ + 1e-6)` (PyTorch's formula, epsilon included).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

/// Sums the squared gradient entries of the parameters it visits.
struct SquaredNorm<'a, IB: Backend> {
    grads: &'a GradientsParams,
    sum: f64,
    _backend: std::marker::PhantomData<IB>,
}

impl<B: Backend, IB: Backend> ModuleVisitor<B> for SquaredNorm<'_, IB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<IB, D>(param.id) {
            let s: f64 = g.powi_scalar(2).sum().into_scalar().elem();
            self.sum += s;
        }
    }
}

/// Multiplies the gradients of the parameters it visits by `scale`.
struct Scale<'a, IB: Backend> {
    grads: &'a mut GradientsParams,
    scale: f64,
    _backend: std::marker::PhantomData<IB>,
}

impl<B: Backend, IB: Backend> ModuleVisitor<B> for Scale<'_, IB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<IB, D>(param.id) {
            self.grads
                .register::<IB, D>(param.id, g.mul_scalar(self.scale));
        }
    }
}

/// Clips the gradients of `module`'s parameters (held for backend `IB`) to a global L2 norm of
/// at most `max_norm`; returns the norm before clipping.
pub fn clip_global_norm<B: Backend, IB: Backend, M: Module<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let mut norm = SquaredNorm::<IB> {
        grads,
        sum: 0.0,
        _backend: std::marker::PhantomData,
    };
    module.visit(&mut norm);
    let total = norm.sum.sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        module.visit(&mut Scale::<IB> {
            grads,
            scale: coef,
            _backend: std::marker::PhantomData,
        });
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    type B = Autodiff<NdArray>;

    #[derive(Module, Debug)]
    struct Two<B: Backend> {
        a: Param<Tensor<B, 1>>,
        b: Param<Tensor<B, 2>>,
    }

    fn grads_of(scale_a: f32, scale_b: f32) -> (Two<B>, GradientsParams) {
        let device = Default::default();
        let model = Two::<B> {
            a: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![1.0f32, 2.0], [2]),
                &device,
            )),
            b: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.5f32, -1.0, 1.5, 2.0], [2, 2]),
                &device,
            )),
        };
        // d/da = scale_a · [3, 4]; d/db = scale_b · [[1, 2], [2, 4]].
        let xa = Tensor::<B, 1>::from_data(TensorData::new(vec![3.0f32, 4.0], [2]), &device);
        let xb = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 2.0, 4.0], [2, 2]),
            &device,
        );
        let loss = (model.a.val() * xa).sum().mul_scalar(scale_a)
            + (model.b.val() * xb).sum().mul_scalar(scale_b);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (model, grads)
    }

    fn values<const D: usize>(grads: &GradientsParams, p: &Param<Tensor<B, D>>) -> Vec<f32> {
        grads
            .get::<NdArray, D>(p.id)
            .expect("gradient")
            .into_data()
            .iter::<f32>()
            .collect()
    }

    #[test]
    fn global_norm_clipping_matches_the_hand_computation() {
        let (model, mut grads) = grads_of(1.0, 1.0);
        // ‖[3, 4]‖² = 25, ‖[1, 2, 2, 4]‖² = 25: global norm √50 ≈ 7.071.
        let norm = clip_global_norm::<B, NdArray, _>(&model, &mut grads, 1.0);
        assert!((norm - 50f64.sqrt()).abs() < 1e-9, "{norm}");
        let coef = 1.0 / (50f64.sqrt() + 1e-6);
        let expect_a = [3.0 * coef, 4.0 * coef];
        let expect_b = [coef, 2.0 * coef, 2.0 * coef, 4.0 * coef];
        for (got, want) in values(&grads, &model.a).iter().zip(expect_a) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        for (got, want) in values(&grads, &model.b).iter().zip(expect_b) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        // Per-tensor clipping to 1 would have made each tensor's own norm 1; globally clipped,
        // the two tensors keep their ratio and together have norm 1.
        let total: f64 = values(&grads, &model.a)
            .iter()
            .chain(values(&grads, &model.b).iter())
            .map(|g| (*g as f64).powi(2))
            .sum();
        assert!((total.sqrt() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn gradients_under_the_limit_are_unchanged() {
        let (model, mut grads) = grads_of(0.01, 0.01);
        let before = (values(&grads, &model.a), values(&grads, &model.b));
        let norm = clip_global_norm::<B, NdArray, _>(&model, &mut grads, 1.0);
        assert!(norm < 1.0);
        assert_eq!((values(&grads, &model.a), values(&grads, &model.b)), before);
    }
}
