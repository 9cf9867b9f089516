//! Position encodings added to the word embeddings: the fixed sinusoids of Vaswani et al. (2017),
//! or a learned table of `max_positions` rows (`nn.Embedding(max_positions, d_model)`).

use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Which position encoding a transformer decoder adds (`model.transformer.positions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PositionKind {
    /// `PE(p, 2i) = sin(p / 10000^(2i/d))`, `PE(p, 2i+1) = cos(p / 10000^(2i/d))`; no parameter,
    /// any length.
    #[default]
    Sinusoidal,
    /// A trained row per position, up to `max_positions`.
    Learned,
}

/// Encodings of positions `from..from + len`, `[len, d]`: rows of the learned `table`
/// (`[max_positions, d]`), or sinusoids without one.
///
/// Panics when the table has fewer than `from + len` rows: callers check lengths against the
/// table first (specs name the key that is too long).
pub fn encodings<B: Backend>(
    table: Option<&Embedding<B>>,
    from: usize,
    len: usize,
    d: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    match table {
        Some(table) => {
            let rows = table.weight.dims()[0];
            assert!(
                from + len <= rows,
                "positions {from}..{} beyond the learned table of {rows}",
                from + len
            );
            let ids = Tensor::<B, 1, Int>::arange(from as i64..(from + len) as i64, device);
            table.weight.val().select(0, ids)
        }
        None => sinusoids(from, len, d, device),
    }
}

/// A learned table of `max_positions` rows of width `d` (N(0, 1) rows, as `nn.Embedding`), or
/// `None` for sinusoids.
pub fn table<B: Backend>(
    kind: PositionKind,
    max_positions: usize,
    d: usize,
    device: &B::Device,
) -> Option<Embedding<B>> {
    match kind {
        PositionKind::Sinusoidal => None,
        PositionKind::Learned => Some(EmbeddingConfig::new(max_positions, d).init(device)),
    }
}

/// Sinusoidal encodings of positions `from..from + len`, `[len, d]`, computed in f64.
pub fn sinusoids<B: Backend>(
    from: usize,
    len: usize,
    d: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut values = Vec::with_capacity(len * d);
    for p in from..from + len {
        for i in 0..d {
            let rate = (10000f64).powf(-((i - i % 2) as f64) / d as f64);
            let angle = p as f64 * rate;
            values.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Tensor::from_data(TensorData::new(values, [len, d]), device)
}
