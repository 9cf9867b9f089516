//! caplab-data's parsers: captions files, Karpathy and COCO JSON, the vocabulary and
//! `tokenizer.json`.

use caplab_data::check::Problems;
use caplab_data::wordpiece::WordPiece;
use caplab_data::{coco, flickr8k, karpathy, Vocab};

use super::outcome::outcome;
use crate::scratch;

/// A small WordPiece `tokenizer.json` (caplab-data's test fixture): placed beside the
/// vocabulary of the `vocab` target, so a version-2 vocabulary can load its tokenizer.
pub const TOKENIZER_JSON: &[u8] =
    include_bytes!("../../../../fuzz/corpus/wordpiece/bert_tiny.json");

/// The outcome of a problem-collecting reader: `ok`, or the first problem.
fn collected(problems: Problems) -> String {
    outcome(&problems.into_result(()))
}

/// A Kaggle `captions.txt` / Flickr30k `results.csv`: [`flickr8k::read_caption_rows`] (what
/// `caplab run` and `caplab score` read) and [`flickr8k::read_rows_checked`] (`caplab data
/// check`).
pub fn captions_csv(data: &[u8]) -> String {
    let path = scratch::file("captions_csv", "captions.txt", data);
    let mut problems = Problems::default();
    flickr8k::read_rows_checked(&path, &mut problems);
    outcome(&flickr8k::read_caption_rows(&path))
}

/// A Flickr8k / Flickr30k token file (`name.jpg#N<TAB>caption`) as [`flickr8k::read_rows_checked`]
/// reads it, and the same bytes as a split list ([`flickr8k::read_split_list`]).
pub fn flickr_token(data: &[u8]) -> String {
    let path = scratch::file("flickr_token", "Flickr8k.token.txt", data);
    let mut problems = Problems::default();
    flickr8k::read_split_list(&path, &mut Problems::default());
    flickr8k::read_rows_checked(&path, &mut problems);
    collected(problems)
}

/// A Karpathy split file: [`karpathy::read_karpathy`] and the split-only
/// [`karpathy::collect_karpathy_split`].
pub fn karpathy(data: &[u8]) -> String {
    let path = scratch::file("karpathy", "dataset_flickr8k.json", data);
    karpathy::collect_karpathy_split(&path, &mut Problems::default());
    outcome(&karpathy::read_karpathy(&path))
}

/// A COCO captions annotation file as a dataset ([`coco::read_coco_captions`]) and as
/// `caplab score`'s references ([`caplab_metrics::coco::load_refs`]).
pub fn coco_annotations(data: &[u8]) -> String {
    let path = scratch::file("coco_annotations", "captions_train2014.json", data);
    let refs = caplab_metrics::coco::load_refs(&path);
    let dataset = coco::read_coco_captions(&path);
    format!("{} / {}", outcome(&dataset), outcome(&refs))
}

/// A run's `vocab.json` ([`Vocab::load`]) with a WordPiece `tokenizer.json` beside it; a loaded
/// vocabulary encodes and decodes a caption.
pub fn vocab(data: &[u8]) -> String {
    let dir = scratch::dir("vocab");
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        scratch::file("vocab", "tokenizer.json", TOKENIZER_JSON);
    }
    let path = scratch::file("vocab", "vocab.json", data);
    let vocab = Vocab::load(&path);
    if let Ok(v) = &vocab {
        let ids = v.encode("A dog's red T-shirt, (wet)!");
        v.decode(&ids);
    }
    outcome(&vocab)
}

/// A Hugging Face `tokenizer.json` ([`WordPiece::load`]); a loaded tokenizer encodes and
/// decodes a caption.
pub fn wordpiece(data: &[u8]) -> String {
    let path = scratch::file("wordpiece", "tokenizer.json", data);
    let wp = WordPiece::load(&path);
    if let Ok(wp) = &wp {
        let tokens = wp.tokens("A dog's red T-shirt, (wet)! naïve café 🙂");
        wp.ids("a cat");
        let pieces: Vec<&str> = tokens.iter().map(String::as_str).collect();
        wp.decode(&pieces);
        Vocab::from_wordpiece(wp.clone());
    }
    outcome(&wp)
}
