//! `caplab compare` on fake run directories written as `caplab run` writes them (report.json,
//! history.jsonl, per_image.json, captions.json, refs.json, spec.toml), built through the
//! runner library's own types and scored with caplab-metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use caplab_metrics::{evaluate, EvalOptions};
use caplab_runner::compare::significance::BootstrapSettings;
use caplab_runner::compare::{compare, CompareOptions, Comparison};
use caplab_runner::history::{EpochRecord, History};
use caplab_runner::report::{epoch_rows, epoch_times, Report, Sample, SystemScores, WallTime};
use polars::prelude::*;

const COLOURS: [&str; 5] = ["red", "blue", "green", "yellow", "black"];
const SHAPES: [&str; 6] = ["circle", "square", "triangle", "star", "cross", "ring"];
const IMAGES: usize = 30;

fn image_id(i: usize) -> String {
    format!("{i:06}.png")
}

/// References of the fake test set: five captions per image naming its colour and shape.
fn references() -> BTreeMap<String, Vec<String>> {
    (0..IMAGES)
        .map(|i| {
            let (c, s) = (COLOURS[i % 5], SHAPES[i % 6]);
            (
                image_id(i),
                vec![
                    format!("a {c} {s} on a white background"),
                    format!("a {c} {s}"),
                    format!("one {c} {s} in the middle of the picture"),
                    format!("a small {c} {s} on white"),
                    format!("there is a {c} {s}"),
                ],
            )
        })
        .collect()
}

/// A good system: the references' wording, a little worse on every (seed + 2)-th image. A weak
/// one: generic captions, right about the colour on every (seed + 2)-th image.
fn captions(good: bool, seed: u64) -> BTreeMap<String, String> {
    (0..IMAGES)
        .map(|i| {
            let (c, s) = (COLOURS[i % 5], SHAPES[i % 6]);
            let varied = (i as u64 + seed).is_multiple_of(seed + 2);
            let caption = match (good, varied) {
                (true, false) => format!("a {c} {s} on a white background"),
                (true, true) => format!("a {s} on a white background"),
                (false, false) => "a picture of a shape".to_string(),
                (false, true) => format!("a {c} shape on a picture"),
            };
            (image_id(i), caption)
        })
        .collect()
}

struct FakeRun<'a> {
    cell: &'a str,
    lr: &'a str,
    seed: u64,
    good: bool,
    wall_s: f64,
}

/// Writes a run directory as `caplab run` does.
fn write_run(dir: &Path, data_root: &Path, run: &FakeRun) {
    std::fs::create_dir_all(dir).expect("mkdir run");
    let refs = references();
    let cands = captions(run.good, run.seed);
    let eval = evaluate(&refs, &cands, &EvalOptions::default()).expect("score");
    let spec: BTreeMap<String, String> = [
        ("experiment.name", "\"tiny\"".to_string()),
        ("experiment.seed", run.seed.to_string()),
        ("experiment.runs_dir", format!("\"runs-{}\"", run.seed)),
        ("model.decoder.cell", format!("\"{}\"", run.cell)),
        ("train.lr", run.lr.to_string()),
        ("train.epochs", "3".to_string()),
        ("data.root", format!("\"{}\"", data_root.display())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    std::fs::write(
        dir.join("spec.toml"),
        format!(
            "[experiment]\nname = \"tiny\"\nseed = {}\n\n[model.decoder]\ncell = \"{}\"\n\n[train]\nlr = {}\nepochs = 3\n",
            run.seed, run.cell, run.lr
        ),
    )
    .expect("spec.toml");
    let mut history = History::new(dir);
    let base = if run.good { 0.8 } else { 0.3 };
    for epoch in 1..=3usize {
        history
            .append(EpochRecord {
                epoch,
                phase: "xe".into(),
                step: epoch * 10,
                lr: 1e-3,
                train: BTreeMap::from([("Loss".to_string(), 3.0 / epoch as f64)]),
                valid: BTreeMap::from([
                    (
                        "Loss".to_string(),
                        3.5 / epoch as f64 + run.seed as f64 * 0.01,
                    ),
                    ("BLEU-4".to_string(), base * 0.3 * epoch as f64 / 3.0),
                    (
                        "CIDEr".to_string(),
                        base * epoch as f64 / 3.0 + run.seed as f64 * 0.01,
                    ),
                ]),
                wall_s: 1.0,
                cpu_s: Some(1.5),
            })
            .expect("history");
    }
    let report = Report {
        experiment: "tiny".into(),
        run_dir: dir.to_path_buf(),
        started: "2026-01-01T00:00:00+00:00".into(),
        dataset: format!("shapes ({})", data_root.display()),
        device: "cpu".into(),
        git_commit: "unknown".into(),
        seed: run.seed,
        spec,
        encoder_weights: "none: randomly initialised".into(),
        vocab_size: 40,
        split_sizes: [60, 10, IMAGES],
        best_epoch: 3,
        epochs: epoch_rows(history.epochs()),
        test: vec![SystemScores {
            name: "model".into(),
            metrics: eval.corpus.clone(),
            intervals: Default::default(),
        }],
        metric_signature: String::new(),
        cider_over_blind: None,
        samples: (0..3)
            .map(|i| Sample {
                image: image_id(i),
                caption: cands[&image_id(i)].clone(),
                references: refs[&image_id(i)].clone(),
                attention: None,
            })
            .collect(),
        diagnostics: serde_json::json!({}),
        feature_cache: None,
        images_decoded: 0,
        wall_time: WallTime {
            prepare_s: 0.5,
            train_s: run.wall_s - 1.0,
            eval_s: 0.5,
            total_s: run.wall_s,
        },
        epoch_times: epoch_times(history.epochs()),
    };
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .expect("report.json");
    std::fs::write(
        dir.join("per_image.json"),
        serde_json::to_string_pretty(&BTreeMap::from([("model", &eval.per_image)])).expect("json"),
    )
    .expect("per_image.json");
    let results: Vec<serde_json::Value> = cands
        .iter()
        .map(|(k, c)| serde_json::json!({ "image_id": k, "caption": c }))
        .collect();
    std::fs::write(
        dir.join("captions.json"),
        serde_json::to_string_pretty(&results).expect("json"),
    )
    .expect("captions.json");
    let mut annotations = Vec::new();
    for (k, rs) in &refs {
        for c in rs {
            annotations
                .push(serde_json::json!({"image_id": k, "id": annotations.len(), "caption": c}));
        }
    }
    let images: Vec<serde_json::Value> =
        refs.keys().map(|k| serde_json::json!({"id": k})).collect();
    std::fs::write(
        dir.join("refs.json"),
        serde_json::to_string(&serde_json::json!({"images": images, "annotations": annotations}))
            .expect("json"),
    )
    .expect("refs.json");
}

/// The fake dataset's image files (for the gallery's thumbnails).
fn write_images(root: &Path) {
    let dir = root.join("images");
    std::fs::create_dir_all(&dir).expect("mkdir images");
    for i in 0..IMAGES {
        let img = image::RgbImage::from_pixel(24, 24, image::Rgb([(i * 8) as u8, 100, 200]));
        img.save(dir.join(image_id(i))).expect("png");
    }
}

/// Two groups × three seeds: `lstm` (weak, the baseline) and `gru` (clearly better).
fn two_groups(root: &Path) -> Vec<PathBuf> {
    let data = root.join("data");
    write_images(&data);
    let mut dirs = Vec::new();
    for (cell, good, walls) in [
        ("lstm", false, [20.0, 22.0, 27.0]),
        ("gru", true, [10.0, 12.0, 14.0]),
    ] {
        for (k, seed) in [1u64, 2, 3].into_iter().enumerate() {
            let dir = root.join(format!("runs/{cell}-s{seed}"));
            write_run(
                &dir,
                &data,
                &FakeRun {
                    cell,
                    lr: "0.001",
                    seed,
                    good,
                    wall_s: walls[k],
                },
            );
            dirs.push(dir);
        }
    }
    dirs
}

fn opts() -> CompareOptions {
    CompareOptions {
        bootstrap: BootstrapSettings {
            samples: 400,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn group<'a>(c: &'a Comparison, label: &str) -> &'a caplab_runner::compare::Group {
    c.groups
        .iter()
        .find(|g| g.label == label)
        .unwrap_or_else(|| {
            panic!(
                "no group {label}: {:?}",
                c.groups.iter().map(|g| &g.label).collect::<Vec<_>>()
            )
        })
}

#[test]
fn groups_get_hand_computed_means_intervals_and_a_significant_bootstrap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = two_groups(tmp.path());
    let c = compare(&dirs, &opts()).expect("compare");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.differing, vec!["model.decoder.cell".to_string()]);
    assert_eq!(c.groups.len(), 2);
    assert_eq!(c.groups[c.baseline].label, "model.decoder.cell=lstm");

    // Wall time: 10, 12, 14 s → mean 12, std 2, CI 12 ± t(0.975, 2)·2/√3.
    let gru = group(&c, "model.decoder.cell=gru");
    let wall = &gru.summaries["wall_s"];
    assert_eq!(wall.n, 3);
    assert!((wall.mean - 12.0).abs() < 1e-12);
    assert!((wall.std.expect("std") - 2.0).abs() < 1e-12);
    let half = 4.302653 * 2.0 / 3f64.sqrt();
    let (lo, hi) = wall.ci.expect("ci");
    assert!((lo - (12.0 - half)).abs() < 1e-5 && (hi - (12.0 + half)).abs() < 1e-5);
    // Every metric: the same formulas by hand over the reports' values.
    for (g, runs) in [
        (gru, &dirs[3..]),
        (group(&c, "model.decoder.cell=lstm"), &dirs[..3]),
    ] {
        for metric in ["BLEU-4", "CIDEr", "ROUGE-L"] {
            let v: Vec<f64> = runs
                .iter()
                .map(|d| Report::load(d).expect("report").test[0].metrics[metric])
                .collect();
            let mean = (v[0] + v[1] + v[2]) / 3.0;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
            let s = &g.summaries[metric];
            assert!((s.mean - mean).abs() < 1e-12, "{metric}");
            assert!((s.std.expect("std") - sd).abs() < 1e-12, "{metric}");
            let (lo, _) = s.ci.expect("ci");
            assert!(
                (lo - (mean - 4.302653 * sd / 3f64.sqrt())).abs() < 1e-6,
                "{metric}"
            );
        }
    }

    // The planted difference is significant on every metric, and paired by seed.
    assert_eq!(c.significance.len(), 1);
    let sig = &c.significance[0];
    assert_eq!(sig.pairing, "by seed (3 pairs)");
    assert_eq!(sig.images, IMAGES);
    for metric in ["BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"] {
        let d = &sig.diffs[metric];
        assert!(
            d.estimate > 0.0 && d.lower > 0.0 && d.p_value < 0.05,
            "{metric}: {d:?}"
        );
        // The estimate is the difference of the group means of the reports' corpus values.
        let want = gru.summaries[metric].mean
            - group(&c, "model.decoder.cell=lstm").summaries[metric].mean;
        assert!((d.estimate - want).abs() < 1e-9, "{metric}");
    }
    let row = c
        .markdown
        .lines()
        .find(|l| l.starts_with("| model.decoder.cell=gru | by seed"))
        .expect("significance row");
    assert!(!row.contains("n.s."), "{row}");
    assert!(
        c.markdown.contains("document frequencies"),
        "the CIDEr-D df choice is stated"
    );

    // Reproducible: the same inputs give the same page.
    let again = compare(&dirs, &opts()).expect("compare");
    assert_eq!(again.markdown, c.markdown);

    // Outputs: csv and parquet round-trip, the page has one SVG per plot and the gallery.
    let out = tmp.path().join("out");
    c.write(&out).expect("write");
    assert_eq!(
        std::fs::read_to_string(out.join("compare.md")).expect("md"),
        c.markdown
    );
    let parquet =
        ParquetReader::new(std::fs::File::open(out.join("compare.parquet")).expect("open"))
            .finish()
            .expect("read parquet");
    assert!(parquet.equals_missing(&c.frame), "{parquet}\n{}", c.frame);
    let csv = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(out.join("compare.csv")))
        .expect("csv reader")
        .finish()
        .expect("read csv");
    assert_eq!(csv.get_column_names(), c.frame.get_column_names());
    assert_eq!(csv.height(), 6);
    for metric in ["BLEU-4", "CIDEr", "wall_s"] {
        let a = csv.column(metric).expect("col").f64().expect("f64");
        let b = c.frame.column(metric).expect("col").f64().expect("f64");
        for i in 0..6 {
            assert_eq!(a.get(i), b.get(i), "{metric} row {i} round-trips exactly");
        }
    }
    let seeds = csv.column("seed").expect("seed").i64().expect("i64");
    assert_eq!(seeds.get(3), Some(1));
    assert_eq!(
        csv.column("model.decoder.cell")
            .expect("col")
            .str()
            .expect("str")
            .get(3),
        Some("gru")
    );

    let html = std::fs::read_to_string(out.join("compare.html")).expect("html");
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "Loss, BLEU-4, CIDEr curves"
    );
    assert_eq!(html.matches("</svg>").count(), 3);
    assert_eq!(
        html.matches("<polyline").count(),
        3 * 6,
        "a line per run per plot"
    );
    assert!(html.contains("class=\"gallery\""));
    assert_eq!(
        html.matches("data:image/jpeg;base64,").count(),
        8,
        "8 thumbnails"
    );
    assert!(html.contains("a red circle on a white background"));
    assert!(!html.contains("<script"));

    if let Ok(python) = std::env::var("CAPLAB_PYARROW_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_compare.py");
        let o = Command::new(python)
            .arg(script)
            .arg(&out)
            .output()
            .expect("run check_compare.py");
        assert!(
            o.status.success(),
            "check_compare.py: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CAPLAB_PYARROW_PYTHON so pyarrow and pandas read compare.parquet"
        );
    }
    // A real browser renders the page: self-contained, no console errors, not blank.
    check_html_in_chromium(&out.join("compare.html"));
}

/// Runs scripts/check_html.py (headless Chromium) on `page`; CI must have chromium.
fn check_html_in_chromium(page: &Path) {
    let found = Command::new("chromium").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install chromium so HTML pages are rendered in a real browser"
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_html.py");
    let o = Command::new("python3")
        .arg(script)
        .arg(page)
        .output()
        .expect("run check_html.py");
    assert!(
        o.status.success(),
        "check_html.py {}: {}{}",
        page.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A run on COCO: `captions.json` and `refs.json` carry COCO's integer ids, and `refs.json`'s
/// images list each id's file (as `caplab run` writes it); the report's samples and
/// `per_image.json` keep the file names.
fn to_coco_ids(run: &Path, with_path: Option<&Path>) {
    let id_of = |name: &str| 1000 + name.trim_end_matches(".png").parse::<u64>().expect("index");
    let captions: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(run.join("captions.json")).expect("captions.json"),
    )
    .expect("json");
    let captions: Vec<serde_json::Value> = captions
        .iter()
        .map(|c| {
            let name = c["image_id"].as_str().expect("file-name id");
            serde_json::json!({"image_id": id_of(name), "caption": c["caption"]})
        })
        .collect();
    std::fs::write(
        run.join("captions.json"),
        serde_json::to_string(&captions).expect("json"),
    )
    .expect("captions.json");
    let mut refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("refs.json")).expect("refs"))
            .expect("json");
    for a in refs["annotations"].as_array_mut().expect("annotations") {
        let name = a["image_id"].as_str().expect("file-name id").to_string();
        a["image_id"] = serde_json::json!(id_of(&name));
    }
    for i in refs["images"].as_array_mut().expect("images") {
        let name = i["id"].as_str().expect("file-name id").to_string();
        *i = match with_path {
            Some(dir) => serde_json::json!({
                "id": id_of(&name), "file_name": name, "path": dir.join(&name)
            }),
            None => serde_json::json!({"id": id_of(&name), "file_name": name}),
        };
    }
    std::fs::write(
        run.join("refs.json"),
        serde_json::to_string(&refs).expect("json"),
    )
    .expect("refs.json");
}

#[test]
fn coco_integer_ids_get_their_thumbnails_in_the_gallery() {
    for with_path in [false, true] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = two_groups(tmp.path());
        // The images found by `file_name` under the data root, or by the recorded `path` when
        // the data root in the spec no longer holds them.
        let images = tmp.path().join("moved");
        if with_path {
            std::fs::rename(tmp.path().join("data/images"), &images).expect("move images");
        }
        for dir in &dirs {
            to_coco_ids(dir, with_path.then_some(images.as_path()));
        }
        let c = compare(&dirs, &opts()).expect("compare");
        let page = caplab_runner::compare::page::page(&c);
        assert_eq!(
            page.matches("data:image/jpeg;base64,").count(),
            8,
            "8 thumbnails (path recorded: {with_path})"
        );
        // The report's samples (file names) still lead the gallery, under their integer ids.
        assert!(page.contains("<b>1000</b>"), "id 1000 in the gallery");
        assert!(page.contains("a red circle on a white background"));
    }
}

#[test]
fn identical_captions_are_not_significant_and_group_by_merges() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut dirs = Vec::new();
    for lr in ["0.001", "0.002"] {
        for seed in [1u64, 2, 3] {
            let dir = tmp.path().join(format!("runs/lr{lr}-s{seed}"));
            write_run(
                &dir,
                &data,
                &FakeRun {
                    cell: "lstm",
                    lr,
                    seed,
                    good: false,
                    wall_s: 10.0,
                },
            );
            dirs.push(dir);
        }
    }
    let c = compare(&dirs, &opts()).expect("compare");
    assert_eq!(c.groups.len(), 2);
    let sig = &c.significance[0];
    for (metric, d) in &sig.diffs {
        assert_eq!(d.estimate, 0.0, "{metric}");
        assert_eq!(d.p_value, 1.0, "{metric}");
    }
    let row = c
        .markdown
        .lines()
        .find(|l| l.starts_with("| train.lr=0.002 | by seed"))
        .expect("significance row");
    assert_eq!(row.matches("p=1.000 n.s.").count(), 6, "{row}");
    // The gallery has no image files here: ids only.
    let page = caplab_runner::compare::page::page(&c);
    assert!(!page.contains("data:image"));

    // --group-by a key that does not differ: one group of six runs.
    let merged = compare(
        &dirs,
        &CompareOptions {
            group_by: vec!["model.decoder.cell".into()],
            ..opts()
        },
    )
    .expect("compare");
    assert_eq!(merged.groups.len(), 1);
    assert_eq!(merged.groups[0].runs.len(), 6);
    assert!(merged.significance.is_empty());
    // --baseline by run directory picks that run's group.
    let b = compare(
        &dirs,
        &CompareOptions {
            baseline: Some(dirs[4].display().to_string()),
            ..opts()
        },
    )
    .expect("compare");
    assert_eq!(b.groups[b.baseline].label, "train.lr=0.002");
    let err = compare(
        &dirs,
        &CompareOptions {
            group_by: vec!["no.such.key".into()],
            ..opts()
        },
    )
    .err()
    .expect("unknown key");
    assert!(format!("{err:#}").contains("no.such.key"));
}

#[test]
fn a_sweep_directory_expands_to_its_finished_trials_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sweep = tmp.path().join("sweeps/cell");
    let data = tmp.path().join("data");
    let mut trials = Vec::new();
    let mut index = 0;
    for cell in ["lstm", "gru"] {
        for seed in [1u64, 2] {
            let rel = format!("trials/{index:03}");
            write_run(
                &sweep.join(&rel),
                &data,
                &FakeRun {
                    cell,
                    lr: "0.001",
                    seed,
                    good: cell == "gru",
                    wall_s: 5.0,
                },
            );
            trials.push(serde_json::json!({
                "index": index,
                "name": format!("model.decoder.cell={cell},seed={seed}"),
                "overrides": {"model.decoder.cell": cell},
                "seed": seed,
                "run_dir": rel,
                "status": "finished",
            }));
            index += 1;
        }
    }
    // A trial still running: no report.json yet.
    std::fs::create_dir_all(sweep.join("trials/004")).expect("mkdir");
    trials.push(serde_json::json!({
        "index": 4, "name": "model.decoder.cell=gru,seed=3",
        "overrides": {"model.decoder.cell": "gru"}, "seed": 3,
        "run_dir": "trials/004", "status": "running",
    }));
    std::fs::write(
        sweep.join("manifest.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "sweep_id": "cell-1", "spec": "tiny.toml", "trials": trials,
        }))
        .expect("json"),
    )
    .expect("manifest");

    let out = tmp.path().join("cmp");
    let o = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["compare", "--quiet", "--bootstrap", "200", "--out"])
        .arg(&out)
        .arg(&sweep)
        .output()
        .expect("run caplab");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        std::fs::read_to_string(out.join("compare.md")).expect("md"),
        "stdout is compare.md"
    );
    assert!(
        stderr.contains("trial 4") && stderr.contains("running"),
        "{stderr}"
    );
    assert!(stdout.contains("trial 4"), "the warning is in the page too");
    assert!(stdout.contains("4 runs in 2 groups"), "{stdout}");
    assert!(
        stdout.contains("model.decoder.cell=gru,seed=2"),
        "trial names label runs"
    );
    assert!(stdout.contains("by seed (2 pairs)"));
    for f in ["compare.csv", "compare.parquet", "compare.html"] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // A parent of run directories works like a sweep; a broken report names its file.
    let c = compare(&[sweep.join("trials")], &opts()).expect("parent dir");
    assert_eq!(c.runs.len(), 4);
    std::fs::write(sweep.join("trials/001/report.json"), "{").expect("break");
    let err = compare(std::slice::from_ref(&sweep), &opts())
        .err()
        .expect("broken report");
    assert!(
        format!("{err:#}").contains("trials/001/report.json"),
        "{err:#}"
    );
    let err = compare(&[tmp.path().join("nowhere")], &opts())
        .err()
        .expect("missing");
    assert!(format!("{err:#}").contains("nowhere"));
}
