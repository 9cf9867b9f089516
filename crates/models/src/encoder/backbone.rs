//! The forward passes every encoder offers, from two per-architecture pieces.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// An encoder trunk: the spatial grid (a CNN's last feature map before the final pooling, a
/// vision transformer's patch tokens) and the global feature (a CNN's pooled features, a
/// vision transformer's class token).
///
/// Implementors provide [`Backbone::forward_spatial_cut`] and [`Backbone::forward_both_cut`]
/// (a CNN pools its grid, see [`cnn_both`]); the other forwards are derived from them, so all
/// architectures share one definition of each.
pub trait Backbone<B: Backend> {
    /// Spatial grid `[B, spatial_channels, h, w]` of normalised images `[B, 3, H, W]`, with
    /// `cut` applied to the input of the last block (ResNet `layer4`, VGG conv5 block,
    /// Inception `Mixed_7c`, a vision transformer's last encoder block): a detach there trains
    /// only the last block.
    fn forward_spatial_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4>;

    /// Spatial grid `[B, spatial_channels, h, w]` before the final pooling.
    fn forward_spatial(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_spatial_cut(images, &|x| x)
    }

    /// Global features `[B, feature_dim]` and spatial grid from one pass, `cut` before the last block.
    fn forward_both_cut(
        &self,
        images: Tensor<B, 4>,
        cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>);

    /// Global features `[B, feature_dim]` and spatial grid from one pass.
    fn forward_both(&self, images: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 4>) {
        self.forward_both_cut(images, &|x| x)
    }

    /// Global features `[B, feature_dim]` of normalised images `[B, 3, H, W]`.
    fn forward_pooled(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_both(images).0
    }
}

/// A CNN's [`Backbone::forward_both_cut`]: its grid and `pool` of that grid.
pub(super) fn cnn_both<B: Backend, M: Backbone<B> + ?Sized>(
    model: &M,
    images: Tensor<B, 4>,
    cut: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    pool: impl FnOnce(Tensor<B, 4>) -> Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 4>) {
    let spatial = model.forward_spatial_cut(images, cut);
    (pool(spatial.clone()), spatial)
}
