//! The `caplab` binary's commands: each file holds one command's clap arguments (their doc
//! comments are the `--help` text) and turns them into a call of the `caplab_runner` library,
//! which takes plain arguments and knows nothing of the command line.

pub mod bench;
pub mod compare;
pub mod data;
pub mod devices;
pub mod eval;
pub mod features;
pub mod run;
pub mod score;
pub mod sweep;
