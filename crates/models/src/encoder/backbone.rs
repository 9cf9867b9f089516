//! The forward passes every encoder offers, from two per-architecture pieces.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A CNN encoder trunk: the spatial grid before the final pooling and the pooled features.
///
/// Implementors provide [`Backbone::forward_spatial_cut`] and [`Backbone::pool`]; the other
/// forwards are derived from them, so all architectures share one definition of each.
pub trait Backbone<B: Backend> {
    /// Spatial grid `[B, spatial_channels, h, w]` of normalised images `[B, 3, H, W]`, with
    /// `cut` applied to the input of the last block (ResNet `layer4`, VGG conv5 block,
    /// Inception `Mixed_7c`): a detach there trains only the last block.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4>;

    /// Pooled features `[B, feature_dim]` of the spatial grid `[B, C, h, w]`.
    fn pool(&self, spatial: Tensor<B, 4>) -> Tensor<B, 2>;

    /// Spatial grid `[B, spatial_channels, h, w]` before the final pooling.
    fn forward_spatial(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_spatial_cut(images, &|x| x)
    }

    /// Pooled features `[B, feature_dim]` and spatial grid from one pass, `cut` before the last block.
    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        let spatial = self.forward_spatial_cut(images, cut);
        (self.pool(spatial.clone()), spatial)
    }

    /// Pooled features `[B, feature_dim]` and spatial grid from one pass.
    fn forward_both(&self, images: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 4>) {
        self.forward_both_cut(images, &|x| x)
    }

    /// Pooled features `[B, feature_dim]` of normalised images `[B, 3, H, W]`.
    fn forward_pooled(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_both(images).0
    }
}
