//! The PyTorch weight readers (safetensors and `torch.save` pickles), through the public
//! importer caplab uses for recurrent decoders.

use burn::backend::NdArray;
use caplab_models::rnn::{load_pytorch_rnn, CellKind, RnnConfig};

use super::outcome::outcome;
use crate::scratch;

/// Imports `data`, written as `file`, into a 2-layer LSTM (input 6, hidden 8: the shapes of
/// caplab-models' `lstm.safetensors` / `lstm.pt` fixtures) with [`load_pytorch_rnn`]; the
/// file's extension picks the reader.
fn import(target: &str, file: &str, data: &[u8]) -> String {
    let path = scratch::file(target, file, data);
    let rnn = RnnConfig::new(CellKind::Lstm, 6, 8)
        .with_num_layers(2)
        .init::<NdArray<f32>>(&Default::default());
    outcome(&load_pytorch_rnn(rnn, &path, ""))
}

/// A `.safetensors` state_dict.
pub fn safetensors(data: &[u8]) -> String {
    import("safetensors", "weights.safetensors", data)
}

/// A `torch.save` state_dict (`.pt`: a zip with `data.pkl`, or a legacy pickle).
pub fn pth(data: &[u8]) -> String {
    import("pth", "weights.pt", data)
}
