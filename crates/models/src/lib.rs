//! caplab models: image encoders, recurrent and transformer decoders, attention and caption
//! search on Burn.

pub mod activation;
pub mod attention;
pub mod captioner;
pub mod decoder;
pub mod encoder;
pub mod glove;
pub mod import;
mod pickle_scan;
pub mod rnn;
pub mod search;
pub mod spec_error;
pub mod transformer;

pub use captioner::{
    Captioner, CaptionerOutput, Decoder, DecoderChoice, EncoderSpec, Features, ModelSpec, Trainable,
};
pub use decoder::{CaptionDecoder, Condition, DecodeState, DecoderSpec};
pub use import::ImportError;
pub use spec_error::SpecError;
