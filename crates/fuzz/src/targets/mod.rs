//! The fuzz targets: one function per parser, each calling caplab's own entry point.
//!
//! A target returns a short description of what the parser said (`ok`, or the first words of
//! its error): the stable harness keeps inputs that produce a description it has not seen as
//! new parents for mutation, a cheap stand-in for coverage feedback.

mod data;
mod metrics;
mod outcome;
#[cfg(feature = "spec")]
mod spec;
#[cfg(feature = "weights")]
mod weights;

pub use data::{
    captions_csv, coco_annotations, flickr_token, karpathy, vocab, wordpiece, TOKENIZER_JSON,
};
pub use metrics::{meteor_norm, ptb_tokenizer, results_json};
#[cfg(feature = "spec")]
pub use spec::spec;
#[cfg(feature = "weights")]
pub use weights::{pth, safetensors};

/// What an input is, for the mutator's structure-aware steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// Text (lines, CSV): byte and token mutations.
    Text,
    /// JSON: values of the parsed tree are mutated too.
    Json,
    /// TOML (the spec): values of the parsed tree are mutated, `--set` items appended.
    Toml,
    /// Binary (weight files): length fields and offsets get extreme integers.
    Binary,
}

/// A fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// Name: the corpus and regression folders and the cargo-fuzz target are named so.
    pub name: &'static str,
    /// The parser run on one input; returns what it said (see the module documentation).
    pub run: fn(&[u8]) -> String,
    /// Tokens of the format the mutator inserts (keys, delimiters, magic values).
    pub dictionary: &'static [&'static str],
    /// The input's structure.
    pub structure: Structure,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every target of this build (the Burn ones with the `spec` and `weights` features).
pub fn all() -> Vec<Target> {
    #[allow(unused_mut)]
    let mut targets = vec![
        Target {
            name: "captions_csv",
            run: captions_csv,
            dictionary: &[
                "image,caption\n",
                "image_name| comment_number| comment\n",
                "\"",
                "\"\"",
                ",",
                "|",
                "\r\n",
                "\u{feff}",
                ".jpg",
            ],
            structure: Structure::Text,
        },
        Target {
            name: "flickr_token",
            run: flickr_token,
            dictionary: &["#0\t", "#4\t", "#", "\t", ".jpg", "\r\n", "\u{feff}"],
            structure: Structure::Text,
        },
        Target {
            name: "karpathy",
            run: karpathy,
            dictionary: &[
                "\"images\"",
                "\"filename\"",
                "\"filepath\"",
                "\"split\"",
                "\"restval\"",
                "\"sentences\"",
                "\"raw\"",
                "\"tokens\"",
                "\"sentids\"",
                "\"imgid\"",
                "\"cocoid\"",
            ],
            structure: Structure::Json,
        },
        Target {
            name: "coco_annotations",
            run: coco_annotations,
            dictionary: &[
                "\"images\"",
                "\"annotations\"",
                "\"image_id\"",
                "\"file_name\"",
                "\"caption\"",
                "\"id\"",
            ],
            structure: Structure::Json,
        },
        Target {
            name: "results_json",
            run: results_json,
            dictionary: &["\"image_id\"", "\"caption\"", "[]", "{}"],
            structure: Structure::Json,
        },
        Target {
            name: "ptb_tokenizer",
            run: ptb_tokenizer,
            dictionary: &[
                "...",
                "…",
                "u.s.a.",
                "mr.",
                "no. 5",
                "can't",
                "''",
                "``",
                "&amp;",
                "|||",
                "--",
                "(",
                ")",
                "-LRB-",
                "1,000.5",
                "'s",
                "http://x.org",
                ":-)",
                "\u{a0}",
            ],
            structure: Structure::Text,
        },
        Target {
            name: "meteor_norm",
            run: meteor_norm,
            dictionary: &[
                "...", "DOTMULTI", "''", "“", "”", "‘", "’", "–", "--", "'", ",", "1,000", "'s",
                "\n", "|||",
            ],
            structure: Structure::Text,
        },
        Target {
            name: "vocab",
            run: vocab,
            dictionary: &[
                "\"version\"",
                "\"tokens\"",
                "\"tokenizer\"",
                "\"words\"",
                "{\"wordpiece\":\"tokenizer.json\"}",
                "\"<pad>\"",
                "\"<sos>\"",
                "\"<eos>\"",
                "\"<unk>\"",
            ],
            structure: Structure::Json,
        },
        Target {
            name: "wordpiece",
            run: wordpiece,
            dictionary: &[
                "\"model\"",
                "\"WordPiece\"",
                "\"BPE\"",
                "\"vocab\"",
                "\"unk_token\"",
                "\"[UNK]\"",
                "\"normalizer\"",
                "\"pre_tokenizer\"",
                "\"decoder\"",
                "\"continuing_subword_prefix\"",
                "\"max_input_chars_per_word\"",
                "\"truncation\"",
                "\"padding\"",
                "\"added_tokens\"",
            ],
            structure: Structure::Json,
        },
    ];
    #[cfg(feature = "spec")]
    targets.push(Target {
        name: "spec",
        run: spec,
        dictionary: &[
            "[experiment]\n",
            "[data]\n",
            "[model.encoder]\n",
            "[model.decoder]\n",
            "[train]\n",
            "[eval.search]\n",
            "[sweep]\n",
            "\0train.epochs=",
            "\0eval.search={ method = \"beam\", beam_size = 3 }",
            "\0sweep.grid={ \"train.lr\" = [1, 2] }",
            "\0model.decoder.cell=\"gru\"",
            "\0preprocess.tokenizer={ wordpiece = \"t.json\" }",
        ],
        structure: Structure::Toml,
    });
    #[cfg(feature = "weights")]
    targets.extend([
        Target {
            name: "safetensors",
            run: safetensors,
            dictionary: &[
                "\"dtype\"",
                "\"shape\"",
                "\"data_offsets\"",
                "\"F32\"",
                "\"F16\"",
                "\"BF16\"",
                "\"I64\"",
                "\"__metadata__\"",
                "weight_ih_l0",
            ],
            structure: Structure::Binary,
        },
        Target {
            name: "pth",
            run: pth,
            dictionary: &[
                "PK\u{3}\u{4}",
                "PK\u{1}\u{2}",
                "PK\u{5}\u{6}",
                "\u{80}\u{2}",
                "ctorch._utils\n_rebuild_tensor_v2\n",
                "ctorch\nFloatStorage\n",
                "collections\nOrderedDict\n",
                "data.pkl",
                "data/0",
            ],
            structure: Structure::Binary,
        },
    ]);
    targets
}

/// The target named `name`, if this build has it.
pub fn by_name(name: &str) -> Option<Target> {
    all().into_iter().find(|t| t.name == name)
}
