//! caplab models: image encoders, recurrent decoders, attention and caption search on Burn.

pub mod attention;
pub mod captioner;
pub mod decoder;
pub mod encoder;
pub mod features;
pub mod glove;
pub mod rnn;
pub mod search;

pub use captioner::{
    Captioner, CaptionerOutput, Decoder, EncoderSpec, Features, ModelSpec, Trainable,
};
pub use decoder::{CaptionDecoder, Condition, DecodeState, DecoderSpec};
