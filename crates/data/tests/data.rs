//! End-to-end check of the public API: generate → load → vocabulary → image tensors.

use std::path::Path;

use caplab_data::config::{load_dataset, DatasetConfig, DatasetKind};
use caplab_data::dataset::Split;
use caplab_data::flickr8k::read_captions_csv;
use caplab_data::image::{load_image, ImageConfig};
use caplab_data::synth::{generate, SynthConfig};
use caplab_data::vocab::{Vocab, VocabConfig};

#[test]
fn synth_to_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shapes");
    let cfg = SynthConfig {
        images: 30,
        size: 96,
        ..SynthConfig::default()
    };
    let summary = generate(&cfg, &out).unwrap();
    assert_eq!((summary.images, summary.captions), (30, 150));
    assert_eq!((summary.train, summary.val, summary.test), (24, 3, 3));

    // captions.txt is a proper Kaggle-format CSV.
    let rows = read_captions_csv(&out.join("captions.txt")).unwrap();
    assert_eq!(rows.len(), 150);
    assert_eq!(rows[0].0, "000000.jpg");

    // The same directory read as plain flickr8k + Karpathy split file gives the same splits.
    let ds = load_dataset(&DatasetConfig::synth(&out)).unwrap();
    let as_flickr: DatasetConfig = serde_json::from_value(serde_json::json!({
        "kind": "flickr8k", "root": out, "splits": "splits.json"
    }))
    .unwrap();
    let ds2 = load_dataset(&as_flickr).unwrap();
    let splits =
        |d: &caplab_data::CaptionDataset| d.images.iter().map(|r| r.split).collect::<Vec<_>>();
    assert_eq!(splits(&ds), splits(&ds2));
    let as_karpathy = DatasetConfig {
        kind: DatasetKind::Karpathy,
        splits: Some("splits.json".into()),
        ..DatasetConfig::synth(&out)
    };
    let ds3 = load_dataset(&as_karpathy).unwrap();
    assert_eq!(ds3.images[5].captions, ds.images[5].captions);

    let vocab = Vocab::from_train(&ds, &VocabConfig::default());
    assert!(vocab.len() > 20);
    let train = ds.split(Split::Train);
    let ids = vocab.encode(&train[0].captions[0]);
    assert!(!ids.contains(&Vocab::UNK));
    let vocab_path = tmp.path().join("vocab.json");
    vocab.save(&vocab_path).unwrap();
    assert_eq!(Vocab::load(&vocab_path).unwrap(), vocab);

    let at_96 = load_image(&train[0].path, &ImageConfig::imagenet(96)).unwrap();
    assert_eq!(at_96.len(), 3 * 96 * 96);
    let at_64 = load_image(&train[0].path, &ImageConfig::imagenet(64)).unwrap();
    assert_eq!(at_64.len(), 3 * 64 * 64);
    assert!(at_64.iter().all(|v| v.is_finite() && v.abs() < 3.0));
}

#[test]
fn missing_root_and_missing_image() {
    let err = load_dataset(&DatasetConfig::synth("/no/such/caplab/root"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("caplab data synth --out"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("images")).unwrap();
    std::fs::write(
        tmp.path().join("captions.txt"),
        "image,caption\nghost.jpg,a dog\n",
    )
    .unwrap();
    let cfg = DatasetConfig {
        kind: DatasetKind::Flickr8k,
        ..DatasetConfig::synth(tmp.path())
    };
    let err = load_dataset(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("captions.txt: line 2") && err.contains("ghost.jpg"),
        "{err}"
    );
    assert!(!Path::new("/no/such/caplab/root").exists());
}
