//! Show, Attend and Tell: soft attention over the encoder's spatial grid and its LSTM decoder.

pub mod decoder;
pub mod record;
pub mod soft_attention;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

pub use decoder::{
    load_pytorch_attention_decoder, AttentionDecoder, AttentionDecoderConfig, AttentionState,
};
pub use record::{greedy_with_maps, AttentionMap};
pub use soft_attention::{SoftAttention, SoftAttentionConfig};

/// Flattens an encoder grid `[N, C, h, w]` to annotations `[N, h·w, C]` (location `y·w + x`).
pub fn grid_to_sequence<B: Backend>(grid: Tensor<B, 4>) -> Tensor<B, 3> {
    let [n, c, h, w] = grid.dims();
    grid.reshape([n, c, h * w]).swap_dims(1, 2)
}
