//! Every published dataset layout, read from small committed fixtures (tests/fixtures/<format>/)
//! written as the published files are; the images are tiny JPEGs generated into a tempdir.

use std::path::{Path, PathBuf};

use caplab_data::check::{DatasetStats, Severity};
use caplab_data::config::{CaptionFiles, DatasetConfig, DatasetKind, SplitLists, SplitSource};
use caplab_data::dataset::Split;
use caplab_data::load::{check_dataset, load_dataset};
use caplab_data::tokenizer::TokenizerConfig;
use caplab_data::vocab::VocabConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture folder into a fresh tempdir.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixture(name), dir.path());
    dir
}

/// Writes a tiny complete JPEG at `dir/name`.
fn jpeg(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    image::RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 30) as u8, 90])
    })
    .save_with_format(dir.join(name), image::ImageFormat::Jpeg)
    .unwrap();
}

fn cfg(kind: DatasetKind, root: &Path) -> DatasetConfig {
    DatasetConfig {
        kind,
        ..DatasetConfig::synth(root)
    }
}

fn split_sizes(ds: &caplab_data::CaptionDataset) -> (usize, usize, usize) {
    (
        ds.split_len(Split::Train),
        ds.split_len(Split::Val),
        ds.split_len(Split::Test),
    )
}

const FLICKR8K_IMAGES: [&str; 5] = [
    "1000268201_693b08cb0e.jpg",
    "1001773457_577c3a7d70.jpg",
    "1002674143_1b742ab4b8.jpg",
    "1003163366_44323f5815.jpg",
    "1007129816_e794419615.jpg",
];

#[test]
fn flickr8k_token_file_with_split_lists_drops_the_jpg_1_entry_with_a_counted_warning() {
    let dir = copy_fixture("flickr8k");
    for name in FLICKR8K_IMAGES {
        jpeg(&dir.path().join("Flicker8k_Dataset"), name);
    }
    // No captions/splits/images_dir: Flickr8k.token.txt, the three split lists and
    // Flicker8k_Dataset/ are found by their published names.
    let c = cfg(DatasetKind::Flickr8k, dir.path());
    let (ds, problems) = check_dataset(&c);
    let ds = ds.unwrap();
    assert_eq!(ds.name, "flickr8k");
    assert_eq!(split_sizes(&ds), (3, 1, 1));
    assert_eq!(ds.num_captions(), 25);
    let first = &ds.images[0];
    assert_eq!(first.id, "1000268201_693b08cb0e.jpg");
    assert_eq!(
        first.path,
        dir.path()
            .join("Flicker8k_Dataset/1000268201_693b08cb0e.jpg")
    );
    // The `#N` suffix is gone, captions are in file order.
    assert_eq!(
        first.captions[0],
        "A small girl in a pink dress climbs the stairs ."
    );
    assert_eq!(first.coco_id, None);
    assert_eq!(
        ds.images
            .iter()
            .find(|r| r.id == "1003163366_44323f5815.jpg")
            .unwrap()
            .split,
        Split::Val
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    let msg = problems[0].to_string();
    assert!(
        msg.contains("Flickr_8k.trainImages.txt")
            && msg.contains("1 image(s) with captions are in no split")
            && msg.contains("2258277193_586949ec62.jpg.1"),
        "{msg}"
    );
    // A run loads the same (the warning is only logged).
    let loaded = load_dataset(&c).unwrap();
    assert_eq!(split_sizes(&loaded), (3, 1, 1));
}

#[test]
fn flickr8k_explicit_token_file_and_split_lists_in_the_spec() {
    let dir = copy_fixture("flickr8k");
    for name in FLICKR8K_IMAGES {
        jpeg(&dir.path().join("pics"), name);
    }
    std::fs::create_dir(dir.path().join("text")).unwrap();
    for f in [
        "Flickr8k.token.txt",
        "Flickr_8k.trainImages.txt",
        "Flickr_8k.devImages.txt",
        "Flickr_8k.testImages.txt",
    ] {
        std::fs::rename(dir.path().join(f), dir.path().join("text").join(f)).unwrap();
    }
    let spec = serde_json::json!({
        "kind": "flickr8k", "root": dir.path(), "images_dir": "pics",
        "captions": "text/Flickr8k.token.txt",
        "splits": {"train": "text/Flickr_8k.trainImages.txt",
                   "val": "text/Flickr_8k.devImages.txt",
                   "test": "text/Flickr_8k.testImages.txt"},
    });
    let c: DatasetConfig = serde_json::from_value(spec).unwrap();
    assert!(matches!(c.captions, Some(CaptionFiles::One(_))));
    assert!(matches!(
        c.splits,
        Some(SplitSource::Lists(SplitLists { .. }))
    ));
    let ds = load_dataset(&c).unwrap();
    assert_eq!(split_sizes(&ds), (3, 1, 1));
    assert_eq!(
        ds.images[0].path.parent(),
        Some(dir.path().join("pics").as_path())
    );
}

#[test]
fn flickr30k_kaggle_results_csv_pipe_separated_with_broken_rows() {
    let dir = copy_fixture("flickr30k_kaggle");
    let images = dir.path().join("flickr30k_images/flickr30k_images");
    for name in ["1000092795.jpg", "10002456.jpg", "2199200615.jpg"] {
        jpeg(&images, name);
    }
    // Defaults: flickr30k_images/results.csv, images in flickr30k_images/flickr30k_images/.
    let c = cfg(DatasetKind::Flickr30k, dir.path());
    let (ds, problems) = check_dataset(&c);
    let ds = ds.unwrap();
    assert_eq!(ds.name, "flickr30k");
    assert_eq!(ds.images.len(), 3);
    assert_eq!(ds.images[0].path, images.join("1000092795.jpg"));
    // `| ` separated and trimmed; the comma inside a caption stays.
    assert_eq!(
        ds.images[0].captions[1],
        "Two young , White males are outside near many bushes ."
    );
    let dog = ds.images.iter().find(|r| r.id == "2199200615.jpg").unwrap();
    assert_eq!(dog.captions.len(), 4, "the broken row is skipped");
    let hats = ds.images.iter().find(|r| r.id == "10002456.jpg").unwrap();
    assert_eq!(hats.captions.len(), 5, "the empty comment is skipped");
    // Both broken rows are warnings naming file and line; nothing is an error.
    let msgs: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(problems.iter().all(|p| p.severity == Severity::Warning));
    assert!(
        msgs[0].contains("results.csv: line 16: missing `caption` field for image 2199200615.jpg"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("results.csv: line 17: empty caption for image 10002456.jpg"),
        "{msgs:?}"
    );
    // Default split rule: 3 images are all train.
    assert_eq!(split_sizes(&load_dataset(&c).unwrap()), (3, 0, 0));
}

#[test]
fn flickr30k_token_file_and_karpathy_json_with_flickr30k_images() {
    let dir = copy_fixture("flickr30k_token");
    let images = dir.path().join("flickr30k_images");
    jpeg(&images, "1000092795.jpg");
    jpeg(&images, "10002456.jpg");
    let ds = load_dataset(&cfg(DatasetKind::Flickr30k, dir.path())).unwrap();
    assert_eq!(ds.images.len(), 2);
    assert_eq!(ds.num_captions(), 10);
    assert_eq!(ds.images[0].path, images.join("1000092795.jpg"));

    let dir = copy_fixture("flickr30k_karpathy");
    let images = dir.path().join("flickr30k_images");
    jpeg(&images, "1000092795.jpg");
    jpeg(&images, "10002456.jpg");
    let mut c = cfg(DatasetKind::Karpathy, dir.path());
    c.splits = Some("dataset_flickr30k.json".into());
    let ds = load_dataset(&c).unwrap();
    assert_eq!(ds.name, "flickr30k");
    assert_eq!(split_sizes(&ds), (1, 0, 1));
    assert_eq!(ds.images[0].path, images.join("1000092795.jpg"));
    assert_eq!(ds.images[0].split, Split::Train);
    assert_eq!(ds.images[0].coco_id, None);
}

fn coco_images(root: &Path) {
    jpeg(&root.join("train2014"), "COCO_train2014_000000000009.jpg");
    jpeg(&root.join("train2014"), "COCO_train2014_000000000025.jpg");
    for id in [42, 73, 74] {
        jpeg(&root.join("val2014"), &format!("COCO_val2014_{id:012}.jpg"));
    }
}

#[test]
fn coco_two_annotation_files_each_in_its_folder_split_by_karpathy_with_ids() {
    let dir = copy_fixture("coco");
    coco_images(dir.path());
    let spec = serde_json::json!({
        "kind": "coco", "root": dir.path(),
        "captions": ["annotations/captions_train2014.json", "annotations/captions_val2014.json"],
        "splits": "dataset_coco.json",
    });
    let c: DatasetConfig = serde_json::from_value(spec).unwrap();
    assert!(matches!(&c.captions, Some(CaptionFiles::Many(v)) if v.len() == 2));
    let (ds, problems) = check_dataset(&c);
    assert!(problems.is_empty(), "{problems:?}");
    let ds = ds.unwrap();
    assert_eq!(ds.name, "coco");
    // restval (73) → train.
    assert_eq!(split_sizes(&ds), (3, 1, 1));
    let by_id = |id: u64| ds.images.iter().find(|r| r.coco_id == Some(id)).unwrap();
    assert_eq!(
        by_id(9).path,
        dir.path().join("train2014/COCO_train2014_000000000009.jpg")
    );
    assert_eq!(
        by_id(42).path,
        dir.path().join("val2014/COCO_val2014_000000000042.jpg")
    );
    assert_eq!(by_id(42).split, Split::Test);
    assert_eq!(by_id(73).split, Split::Train);
    assert_eq!(by_id(74).split, Split::Val);
    assert_eq!(by_id(25).captions.len(), 5);
    assert_eq!(by_id(25).captions[1], "A giraffe standing up nearby a tree");
    assert!(ds.images.iter().all(|r| r.coco_id.is_some()));

    // Without the split file: the default rule over both files' images.
    let mut c = c;
    c.splits = None;
    let ds = load_dataset(&c).unwrap();
    assert_eq!(ds.images.len(), 5);
    assert!(ds.images.iter().all(|r| r.coco_id.is_some()));

    // Karpathy's dataset_coco.json alone: filepath + filename, cocoid carried through.
    let mut k = cfg(DatasetKind::Karpathy, dir.path());
    k.splits = Some("dataset_coco.json".into());
    let ds = load_dataset(&k).unwrap();
    assert_eq!(split_sizes(&ds), (3, 1, 1));
    let r = ds
        .images
        .iter()
        .find(|r| r.id == "COCO_val2014_000000000073.jpg")
        .unwrap();
    assert_eq!(r.coco_id, Some(73));
    assert_eq!(
        r.path,
        dir.path().join("val2014/COCO_val2014_000000000073.jpg")
    );
}

#[test]
fn coco_single_file_spec_still_parses_as_a_string() {
    let c: DatasetConfig = serde_json::from_value(serde_json::json!({
        "kind": "coco", "root": "r", "captions": "annotations/captions_val2014.json"
    }))
    .unwrap();
    assert_eq!(
        c.captions,
        Some(CaptionFiles::One(
            "annotations/captions_val2014.json".into()
        ))
    );
    // It serialises back as a plain string.
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["captions"], "annotations/captions_val2014.json");
}

#[test]
fn check_lists_every_problem_with_file_and_line() {
    let dir = copy_fixture("flickr8k");
    let images = dir.path().join("Flicker8k_Dataset");
    // 1000268201 missing; 1001773457 truncated; 1002674143 empty.
    jpeg(&images, "1001773457_577c3a7d70.jpg");
    let full = std::fs::read(images.join("1001773457_577c3a7d70.jpg")).unwrap();
    std::fs::write(
        images.join("1001773457_577c3a7d70.jpg"),
        &full[..full.len() - 40],
    )
    .unwrap();
    std::fs::write(images.join("1002674143_1b742ab4b8.jpg"), b"").unwrap();
    jpeg(&images, "1003163366_44323f5815.jpg");
    jpeg(&images, "1007129816_e794419615.jpg");
    let token = dir.path().join("Flickr8k.token.txt");
    let mut text = std::fs::read_to_string(&token).unwrap();
    text.push_str("no tab on this line\n");
    text.push_str("1007129816_e794419615.jpg\tno caption number\n");
    text.push_str("1007129816_e794419615.jpg#5\t   \n");
    text.push_str("1007129816_e794419615.jpg#0\tthe same number again\n");
    std::fs::write(&token, text).unwrap();
    // Listed twice in train, and again in test.
    let train = dir.path().join("Flickr_8k.trainImages.txt");
    let mut list = std::fs::read_to_string(&train).unwrap();
    list.push_str("1001773457_577c3a7d70.jpg\n");
    std::fs::write(&train, list).unwrap();
    let test = dir.path().join("Flickr_8k.testImages.txt");
    std::fs::write(
        &test,
        "1007129816_e794419615.jpg\n1003163366_44323f5815.jpg\n",
    )
    .unwrap();

    let c = cfg(DatasetKind::Flickr8k, dir.path());
    let (ds, problems) = check_dataset(&c);
    let msgs: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str| {
        assert!(
            msgs.iter().any(|m| m.contains(needle)),
            "no problem contains {needle:?}: {msgs:#?}"
        )
    };
    has("error: ");
    has("Flickr8k.token.txt: line 31: expected `image#N<TAB>caption` (no tab on this line)");
    has("Flickr8k.token.txt: line 32: expected `image#N` before the tab");
    has("Flickr8k.token.txt: line 33: empty caption for image 1007129816_e794419615.jpg");
    has("Flickr8k.token.txt: line 34: duplicate caption 1007129816_e794419615.jpg#0 (first at line 21)");
    has("Flickr_8k.trainImages.txt: line 4: image 1001773457_577c3a7d70.jpg is listed twice (first at line 2)");
    has("Flickr_8k.testImages.txt: line 2: image 1003163366_44323f5815.jpg is also listed in");
    has("Flickr8k.token.txt: line 1: image 1000268201_693b08cb0e.jpg is listed but");
    has("1001773457_577c3a7d70.jpg: cannot decode image: truncated JPEG");
    has("1002674143_1b742ab4b8.jpg: cannot decode image: empty file (0 bytes)");
    has("warning: ");
    has("2258277193_586949ec62.jpg.1");
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    assert_eq!(errors, 9, "{msgs:#?}");
    // What remains is still a dataset: the two good images.
    let ds = ds.unwrap();
    assert_eq!(ds.images.len(), 2);
    // A run fails on the same problems, listed.
    let err = load_dataset(&c).unwrap_err().to_string();
    assert!(err.starts_with("9 problems in the dataset:"), "{err}");
    assert!(err.contains("empty file (0 bytes)"), "{err}");
}

#[test]
fn stats_on_the_coco_fixture() {
    let dir = copy_fixture("coco");
    coco_images(dir.path());
    let c: DatasetConfig = serde_json::from_value(serde_json::json!({
        "kind": "coco", "root": dir.path(),
        "captions": ["annotations/captions_train2014.json", "annotations/captions_val2014.json"],
        "splits": "dataset_coco.json",
    }))
    .unwrap();
    let ds = load_dataset(&c).unwrap();
    let stats = DatasetStats::compute(&ds, &TokenizerConfig::Words, &VocabConfig::default())
        .expect("stats");
    assert_eq!(stats.splits[0].images, 3);
    assert_eq!(stats.splits[0].captions, 15);
    assert_eq!(stats.captions_per_image.get(&5), Some(&5));
    // "Closeup of bins of food that include broccoli and bread." → 10 tokens.
    assert!(stats.splits[0].lengths.max >= 10);
    assert!(stats.splits[1].oov_tokens > 0 && stats.splits[1].oov_rate() < 1.0);
    let table = stats.to_string();
    assert!(table.contains("train") && table.contains("15"), "{table}");
}
