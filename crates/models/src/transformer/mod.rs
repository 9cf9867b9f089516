//! A transformer caption decoder (Vaswani et al. 2017) over the encoder's spatial grid, with
//! `torch.nn.TransformerDecoder`'s module tree and an incremental key/value cache for search.
//!
//! burn-nn 0.21 has a `TransformerDecoder` with an autoregressive cache, but its cache
//! (`TransformerDecoderAutoregressiveCache`) keeps every sub-module's past outputs in private
//! fields, so beam search cannot reorder it with its beams; its step takes the whole sequence so
//! far rather than the new token; it returns no cross-attention weights (needed for attention
//! overlays); and its attention has separate query/key/value `Linear`s where PyTorch packs
//! `in_proj_weight`. caplab's layers keep PyTorch's names and layout instead.

pub mod attention;
pub mod decoder;
pub mod import;
pub mod layer;
pub mod position;
pub mod stack;

pub use attention::{KvCache, MultiHeadAttention, MultiHeadAttentionConfig};
pub use decoder::{NormPlacement, TransformerCaptionDecoder, TransformerSpec, TransformerState};
pub use import::load_pytorch_transformer;
pub use layer::{TransformerDecoderLayer, TransformerDecoderLayerConfig};
pub use position::PositionKind;
pub use stack::{TransformerDecoder, TransformerDecoderConfig};
