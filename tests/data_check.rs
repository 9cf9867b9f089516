//! `caplab data check SPEC`: the built binary on a dataset with planted problems (every one
//! listed, non-zero exit) and on a clean two-file COCO dataset (exit 0, the expected counts).

use std::path::Path;
use std::process::{Command, Output};

fn caplab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caplab"))
        .current_dir(dir)
        .env_remove("CAPLAB_LOG")
        .args(args)
        .output()
        .expect("the caplab binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(path, contents).expect("write test file");
}

/// Writes a tiny complete JPEG.
fn jpeg(path: &Path) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 15) as u8, ((x * y) % 255) as u8])
    })
    .save_with_format(path, image::ImageFormat::Jpeg)
    .expect("write JPEG");
}

fn spec(kind: &str, root: &str, extra: &str) -> String {
    format!(
        "[experiment]\nname = \"check\"\n\n[data]\nkind = \"{kind}\"\nroot = \"{root}\"\n{extra}\n\
         [preprocess.vocab]\nmin_freq = 1\n\n[model.encoder]\narch = \"resnet_tiny\"\n"
    )
}

#[test]
fn planted_problems_are_all_listed_and_the_exit_status_is_non_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("flickr8k");
    let images = root.join("Flicker8k_Dataset");
    let mut token = String::new();
    for (i, name) in ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
        .iter()
        .enumerate()
    {
        for n in 0..3 {
            token.push_str(&format!(
                "{name}#{n}\tA dog number {i} runs with caption {n} .\n"
            ));
        }
    }
    // Lines 19–22: a line without a tab, a name without #N, an empty caption, a repeated #N.
    token.push_str("a.jpg#3 a dog without a tab\n");
    token.push_str("b.jpg\ta caption without its number\n");
    token.push_str("c.jpg#3\t \n");
    token.push_str("d.jpg#0\tthe first number again\n");
    // Captions for an image in no split file (a warning).
    token.push_str("2258277193_586949ec62.jpg.1#0\ta stray entry\n");
    write(&root.join("Flickr8k.token.txt"), &token);
    write(
        &root.join("Flickr_8k.trainImages.txt"),
        "a.jpg\nb.jpg\nc.jpg\na.jpg\n",
    );
    write(&root.join("Flickr_8k.devImages.txt"), "d.jpg\ne.jpg\n");
    write(&root.join("Flickr_8k.testImages.txt"), "f.jpg\nd.jpg\n");
    // a: fine; b: missing; c: truncated; d: empty; e, f: fine.
    for name in ["a.jpg", "c.jpg", "e.jpg", "f.jpg"] {
        jpeg(&images.join(name));
    }
    let full = std::fs::read(images.join("c.jpg")).expect("read JPEG");
    std::fs::write(images.join("c.jpg"), &full[..full.len() / 2]).expect("cut JPEG");
    std::fs::write(images.join("d.jpg"), b"").expect("empty file");
    write(
        &tmp.path().join("spec.toml"),
        &spec("flickr8k", "flickr8k", ""),
    );

    let out = caplab(tmp.path(), &["data", "check", "spec.toml"]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    let expected = [
        "error: flickr8k/Flickr8k.token.txt: line 19: expected `image#N<TAB>caption` (no tab on this line)",
        "error: flickr8k/Flickr8k.token.txt: line 20: expected `image#N` before the tab, got \"b.jpg\"",
        "error: flickr8k/Flickr8k.token.txt: line 21: empty caption for image c.jpg",
        "error: flickr8k/Flickr8k.token.txt: line 22: duplicate caption d.jpg#0 (first at line 10)",
        "error: flickr8k/Flickr_8k.trainImages.txt: line 4: image a.jpg is listed twice (first at line 1)",
        "error: flickr8k/Flickr_8k.testImages.txt: line 2: image d.jpg is also listed in flickr8k/Flickr_8k.devImages.txt at line 1",
        "error: flickr8k/Flickr8k.token.txt: line 4: image b.jpg is listed but flickr8k/Flicker8k_Dataset/b.jpg does not exist",
        "error: flickr8k/Flicker8k_Dataset/c.jpg: cannot decode image: truncated JPEG",
        "error: flickr8k/Flicker8k_Dataset/d.jpg: cannot decode image: empty file (0 bytes)",
        "warning: flickr8k/Flickr_8k.trainImages.txt: 1 image(s) with captions are in no split and were dropped: 2258277193_586949ec62.jpg.1",
    ];
    for line in expected {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("error: ")).count(),
        9,
        "{stdout}"
    );
    assert!(stdout.contains("9 error(s), 1 warning(s)"), "{stdout}");
    assert!(
        stderr.contains("the dataset of spec.toml has 9 error(s), listed above"),
        "{stderr}"
    );
    // The table covers what could be read: a, e and f.
    assert!(stdout.contains("dataset flickr8k"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()[..]
            .starts_with(&["total", "3", "9"])),
        "{stdout}"
    );
}

const COCO_TRAIN: &str = r#"{"info":{"year":2014},"licenses":[],"type":"captions",
 "images":[{"id":9,"file_name":"COCO_train2014_000000000009.jpg","height":480,"width":640},
           {"id":25,"file_name":"COCO_train2014_000000000025.jpg","height":426,"width":640},
           {"id":30,"file_name":"COCO_train2014_000000000030.jpg","height":428,"width":640}],
 "annotations":[{"image_id":9,"id":1,"caption":"A plate of food with broccoli."},
                {"image_id":9,"id":2,"caption":"Food in colourful trays."},
                {"image_id":25,"id":3,"caption":"A giraffe eating leaves from a tree."},
                {"image_id":25,"id":4,"caption":"A tall giraffe next to trees."},
                {"image_id":30,"id":5,"caption":"A vase of flowers on a table."}]}"#;

const COCO_VAL: &str = r#"{"info":{"year":2014},"licenses":[],"type":"captions",
 "images":[{"id":42,"file_name":"COCO_val2014_000000000042.jpg"},
           {"id":73,"file_name":"COCO_val2014_000000000073.jpg"}],
 "annotations":[{"image_id":42,"id":6,"caption":"A dog sleeping on shoes."},
                {"image_id":73,"id":7,"caption":"A motorcycle parked by a kerb."},
                {"image_id":73,"id":8,"caption":"An old motorcycle with a leather seat."}]}"#;

fn karpathy_entry(folder: &str, id: u64, split: &str, caption: &str) -> String {
    format!(
        r#"{{"filepath":"{folder}","filename":"COCO_{folder}_{id:012}.jpg","imgid":0,"split":"{split}","cocoid":{id},"sentids":[0],"sentences":[{{"raw":"{caption}","tokens":[],"imgid":0,"sentid":0}}]}}"#
    )
}

#[test]
fn clean_coco_with_two_annotation_files_exits_zero_with_the_expected_counts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("coco");
    write(
        &root.join("annotations/captions_train2014.json"),
        COCO_TRAIN,
    );
    write(&root.join("annotations/captions_val2014.json"), COCO_VAL);
    for id in [9, 25, 30] {
        jpeg(&root.join(format!("train2014/COCO_train2014_{id:012}.jpg")));
    }
    for id in [42, 73] {
        jpeg(&root.join(format!("val2014/COCO_val2014_{id:012}.jpg")));
    }
    let entries = [
        karpathy_entry("train2014", 9, "train", "x"),
        karpathy_entry("train2014", 25, "train", "x"),
        karpathy_entry("train2014", 30, "restval", "x"),
        karpathy_entry("val2014", 42, "val", "x"),
        karpathy_entry("val2014", 73, "test", "x"),
    ];
    write(
        &root.join("dataset_coco.json"),
        &format!(r#"{{"dataset":"coco","images":[{}]}}"#, entries.join(",")),
    );
    write(
        &tmp.path().join("spec.toml"),
        &spec(
            "coco",
            "coco",
            "captions = [\"annotations/captions_train2014.json\", \"annotations/captions_val2014.json\"]\n\
             splits = \"dataset_coco.json\"\n",
        ),
    );
    let out = caplab(tmp.path(), &["data", "check", "spec.toml"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // split, images, captions: restval (30) counts as train.
    assert_eq!(row("train")[1..3], ["3", "5"], "{stdout}");
    assert_eq!(row("val")[1..3], ["1", "1"], "{stdout}");
    assert_eq!(row("test")[1..3], ["1", "2"], "{stdout}");
    assert_eq!(row("total")[1..3], ["5", "8"], "{stdout}");
    assert!(stdout.contains("0 error(s), 0 warning(s)"), "{stdout}");
    assert!(
        stdout.contains("captions per image (captions: images): 1: 2, 2: 3"),
        "{stdout}"
    );
    assert!(!stdout.contains("error: "), "{stdout}");

    // --set applies as for `caplab run`: an absent root is the one error, with its advice.
    let out = caplab(
        tmp.path(),
        &[
            "data",
            "check",
            "spec.toml",
            "--set",
            "data.root=\"nowhere\"",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("error: dataset root nowhere does not exist")
            && stdout.contains("1 error(s)"),
        "{stdout}"
    );
}
