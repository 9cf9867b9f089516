//! `SoftAttention`: additive (Bahdanau) attention of Show, Attend and Tell over the encoder grid.
//!
//! `e = full_att(relu(encoder_att(a) + decoder_att(h)))`, `alpha = softmax_L(e)`,
//! `context = sum_l alpha_l a_l`, with the parameter names of sgrvinod's PyTorch `Attention`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Configuration of a [`SoftAttention`].
#[derive(Config, Debug)]
pub struct SoftAttentionConfig {
    /// Size `D` of an encoder annotation vector (channels of the grid).
    pub encoder_dim: usize,
    /// Size `H` of the decoder's hidden state.
    pub decoder_dim: usize,
    /// Size `A` of the attention MLP's hidden layer.
    pub attention_dim: usize,
}

impl SoftAttentionConfig {
    /// Builds the attention with burn's default `Linear` initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SoftAttention<B> {
        SoftAttention {
            encoder_att: LinearConfig::new(self.encoder_dim, self.attention_dim).init(device),
            decoder_att: LinearConfig::new(self.decoder_dim, self.attention_dim).init(device),
            full_att: LinearConfig::new(self.attention_dim, 1).init(device),
        }
    }
}

/// Additive soft attention: scores every grid location from the annotation and the hidden state.
#[derive(Module, Debug)]
pub struct SoftAttention<B: Backend> {
    /// Projection of the annotations `D -> A`.
    pub encoder_att: Linear<B>,
    /// Projection of the decoder state `H -> A`.
    pub decoder_att: Linear<B>,
    /// Score of a location `A -> 1`.
    pub full_att: Linear<B>,
}

impl<B: Backend> SoftAttention<B> {
    /// Projects the annotations `[N, L, D] -> [N, L, A]`; constant over a caption, so computed once.
    pub fn project_encoder(&self, encoder_out: Tensor<B, 3>) -> Tensor<B, 3> {
        self.encoder_att.forward(encoder_out)
    }

    /// Context `[N, D]` and weights `alpha` `[N, L]` (rows sum to 1) for annotations `[N, L, D]`
    /// and hidden state `[N, H]`; `encoder_att` is [`Self::project_encoder`]'s output if cached.
    pub fn forward(
        &self,
        encoder_out: Tensor<B, 3>,
        encoder_att: Option<Tensor<B, 3>>,
        hidden: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let att1 = encoder_att.unwrap_or_else(|| self.project_encoder(encoder_out.clone()));
        let att2 = self.decoder_att.forward(hidden).unsqueeze_dim::<3>(1);
        let scores = self.full_att.forward(relu(att1 + att2)).squeeze_dim::<2>(2);
        let alpha = softmax(scores, 1);
        let context = (encoder_out * alpha.clone().unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .squeeze_dim::<2>(1);
        (context, alpha)
    }
}
