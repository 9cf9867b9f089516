//! WordPiece tokenization against the Python `tokenizers` package: the committed fixture
//! (`fixtures/wordpiece`, made by `scripts/parity/wordpiece.py`) holds a BERT-style
//! `tokenizer.json` and Python's pieces, ids and decoded text for messy captions.

use std::path::{Path, PathBuf};

use caplab_data::vocab::TOKENIZER_FILE;
use caplab_data::wordpiece::WordPiece;
use caplab_data::{Tokenizer, TokenizerConfig, Vocab, VocabConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    vocab_size: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    caption: String,
    tokens: Vec<String>,
    ids: Vec<u32>,
    decoded: String,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wordpiece")
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(fixture_dir().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tokenizer_path() -> PathBuf {
    fixture_dir().join("tokenizer.json")
}

#[test]
fn wordpiece_pieces_ids_and_decoded_text_equal_python_tokenizers() {
    let wp = WordPiece::load(&tokenizer_path()).unwrap();
    let fx = fixture();
    assert!(fx.cases.len() >= 10);
    for case in &fx.cases {
        assert_eq!(wp.tokens(&case.caption), case.tokens, "{:?}", case.caption);
        assert_eq!(wp.ids(&case.caption), case.ids, "{:?}", case.caption);
        let pieces: Vec<&str> = case.tokens.iter().map(String::as_str).collect();
        assert_eq!(wp.decode(&pieces), case.decoded, "{:?}", case.caption);
    }
    assert_eq!(wp.vocabulary().len(), fx.vocab_size);
    assert_eq!(wp.unk_token(), "[UNK]");
    assert_eq!(wp.pad_token(), Some("[PAD]"));
}

#[test]
fn a_wordpiece_vocabulary_is_the_tokenizers_plus_sos_and_eos_and_round_trips_captions() {
    let fx = fixture();
    let vocab = Vocab::for_tokenizer(
        &TokenizerConfig::Wordpiece(tokenizer_path()),
        std::iter::empty(),
        &VocabConfig::default(),
    )
    .unwrap();
    // BERT's rule: the tokenizer's vocabulary plus <sos> and <eos>; [PAD] and [UNK] are caplab's
    // <pad> and <unk>.
    assert_eq!(vocab.len(), fx.vocab_size + 2);
    assert_eq!(&vocab.tokens()[..4], &Vocab::SPECIALS);
    assert!(vocab.id("[PAD]").is_none() && vocab.id("[UNK]").is_none());
    assert!(vocab.id("[CLS]").is_some() && vocab.id("##t").is_some());
    for case in &fx.cases {
        let ids = vocab.encode(&case.caption);
        let expected: Vec<u32> = case
            .tokens
            .iter()
            .map(|t| vocab.id(t).unwrap_or(Vocab::UNK))
            .collect();
        assert_eq!(ids, expected, "{:?}", case.caption);
        let mut seq = vec![Vocab::SOS];
        seq.extend(&ids);
        seq.extend([Vocab::EOS, Vocab::PAD]);
        assert_eq!(vocab.decode(&seq), case.decoded, "{:?}", case.caption);
    }
}

#[test]
fn a_wordpiece_vocabulary_saves_its_tokenizer_beside_it_and_loads_equal() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = Vocab::from_wordpiece(WordPiece::load(&tokenizer_path()).unwrap());
    let path = dir.path().join("run/vocab.json");
    vocab.save(&path).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("run").join(TOKENIZER_FILE)).unwrap(),
        std::fs::read(tokenizer_path()).unwrap()
    );
    // The copy moves with its directory: loading needs nothing outside it.
    let moved = dir.path().join("elsewhere");
    std::fs::rename(dir.path().join("run"), &moved).unwrap();
    let loaded = Vocab::load(&moved.join("vocab.json")).unwrap();
    assert_eq!(loaded, vocab);
    assert!(matches!(loaded.tokenizer(), Tokenizer::WordPiece(_)));
    assert_eq!(
        loaded.decode(&loaded.encode("A medium-sized teal donut")),
        "a medium - sized teal donut"
    );
}

#[test]
fn a_tokenizer_that_is_not_wordpiece_or_not_json_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let word_level = dir.path().join("wordlevel.json");
    std::fs::write(
        &word_level,
        r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"a":0,"[UNK]":1},"unk_token":"[UNK]"}}"#,
    )
    .unwrap();
    let err = WordPiece::load(&word_level).unwrap_err().to_string();
    assert!(
        err.contains("wordlevel.json") && err.contains("WordLevel") && err.contains("WordPiece"),
        "{err}"
    );
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let err = Tokenizer::wordpiece(&broken).unwrap_err().to_string();
    assert!(err.contains("broken.json"), "{err}");
    let missing = dir.path().join("missing.json");
    let err = Tokenizer::wordpiece(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.json"), "{err}");
}

#[test]
fn vocabulary_settings_with_wordpiece_are_an_error_naming_the_key() {
    let err = Vocab::for_tokenizer(
        &TokenizerConfig::Wordpiece(tokenizer_path()),
        std::iter::empty(),
        &VocabConfig {
            min_freq: 5,
            max_size: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("vocab") && err.contains("words"), "{err}");
}

#[test]
fn data_check_statistics_count_wordpiece_pieces_and_unknown_pieces() {
    use caplab_data::{CaptionDataset, DatasetStats, ImageRecord, Split};
    let fx = fixture();
    let case = |i: usize| &fx.cases[i];
    let record = |id: &str, split, captions: Vec<String>| ImageRecord {
        id: id.into(),
        path: PathBuf::from(id),
        captions,
        split,
        coco_id: None,
    };
    // Train: two captions without unknown pieces; val: two with ("T-shirt" and emoji); test:
    // the CJK caption (all pieces unknown).
    let ds = CaptionDataset {
        name: "wordpiece".into(),
        root: PathBuf::new(),
        images: vec![
            record(
                "a",
                Split::Train,
                vec![case(0).caption.clone(), case(1).caption.clone()],
            ),
            record(
                "b",
                Split::Val,
                vec![case(2).caption.clone(), case(9).caption.clone()],
            ),
            record("c", Split::Test, vec![case(8).caption.clone()]),
        ],
    };
    let config = TokenizerConfig::Wordpiece(tokenizer_path());
    let stats = DatasetStats::compute(&ds, &config, &VocabConfig::default()).expect("stats");
    let unknown = |i: usize| case(i).tokens.iter().filter(|t| *t == "[UNK]").count();
    // Lengths are in pieces, as Python's tokenizer splits them.
    assert_eq!(
        stats.splits[0].tokens,
        case(0).tokens.len() + case(1).tokens.len()
    );
    assert_eq!(stats.splits[0].lengths.max, case(1).tokens.len());
    assert_eq!(
        stats.splits[1].tokens,
        case(2).tokens.len() + case(9).tokens.len()
    );
    assert_eq!(stats.splits[1].oov_tokens, unknown(2) + unknown(9));
    assert!(stats.splits[1].oov_tokens > 0);
    assert_eq!(stats.splits[2].oov_tokens, unknown(8));
    // The vocabulary is the tokenizer's own plus <sos> and <eos>, whatever the train captions.
    let vocab =
        Vocab::for_tokenizer(&config, std::iter::empty(), &VocabConfig::default()).expect("vocab");
    assert_eq!(stats.vocab_size, vocab.len());
    let distinct: std::collections::BTreeSet<&String> =
        case(0).tokens.iter().chain(&case(1).tokens).collect();
    assert_eq!(stats.train_word_types, distinct.len());
    let text = stats.to_string();
    assert!(
        text.contains("WordPiece pieces") && text.contains("tokenizer's own"),
        "{text}"
    );

    // Vocabulary settings do not apply to a WordPiece vocabulary: an error naming the key.
    let err = DatasetStats::compute(
        &ds,
        &config,
        &VocabConfig {
            min_freq: 2,
            max_size: None,
        },
    )
    .expect_err("min_freq with WordPiece");
    assert!(err.to_string().contains("vocab"), "{err}");
}
