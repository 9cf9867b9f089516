//! Datasets, tokenizer, vocabulary, image pipeline and the built-in synthetic dataset for caplab.
//!
//! Entry points: [`load::load_dataset`] reads any supported dataset into a
//! [`dataset::CaptionDataset`] ([`load::check_dataset`] lists every problem instead, and
//! [`check::DatasetStats`] summarises it), [`synth::generate`] writes the built-in shapes dataset,
//! [`vocab::Vocab`] maps captions to ids and [`image::load_image`] turns a file into a
//! normalised CHW `f32` buffer.

#![warn(missing_docs)]

pub mod check;
pub mod coco;
pub mod config;
pub mod dataset;
pub mod error;
pub mod features;
pub mod flickr8k;
pub mod fsutil;
pub mod image;
pub mod karpathy;
pub mod load;
pub mod resample;
pub mod synth;
pub mod tokenizer;
pub mod vocab;
pub mod wordpiece;

pub use check::{DatasetStats, Problem, Severity};
pub use config::{DatasetConfig, DatasetKind};
pub use dataset::{CaptionDataset, ImageRecord, Split};
pub use error::DataError;
pub use image::{load_image, ImageConfig};
pub use load::{check_dataset, load_dataset};
pub use synth::{generate, SynthConfig, SynthSummary};
pub use tokenizer::{tokenize, Tokenizer, TokenizerConfig};
pub use vocab::{Vocab, VocabConfig};
