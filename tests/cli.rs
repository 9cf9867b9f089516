//! End-to-end tests of the `caplab` CLI: spec errors, a tiny complete run, its run directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Runs `python scripts/<script> <arg>`; fails with `what` and the script's output unless it
/// exits 0.
fn run_script(python: &str, script: &str, arg: &Path, what: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let o = Command::new(python)
        .arg(path)
        .arg(arg)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

#[test]
fn spec_errors_name_the_key_and_the_allowed_values() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), TINY_SPEC);

    let o = caplab(
        dir,
        &["run", "tiny.toml", "--set", "train.epoks=2", "--dry-run"],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("epoks") && e.contains("train"), "{e}");

    let o = caplab(
        dir,
        &[
            "run",
            "tiny.toml",
            "--set",
            "model.decoder.cell=\"rnn\"",
            "--dry-run",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("lstm") && e.contains("gru") && e.contains("cell"),
        "{e}"
    );

    let o = caplab(
        dir,
        &[
            "run",
            "tiny.toml",
            "--set",
            "model.encoder.transform_input=false",
            "--dry-run",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("model.encoder.transform_input") && e.contains("inception_v3"),
        "{e}"
    );

    let o = caplab(
        dir,
        &["run", "tiny.toml", "--set", "train.epochs=0", "--dry-run"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("train.epochs"), "{}", stderr(&o));

    let o = caplab(
        dir,
        &["run", "tiny.toml", "--set", "train.lr=1e-4", "--dry-run"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let resolved = String::from_utf8_lossy(&o.stdout);
    assert!(resolved.contains("lr = 0.0001"), "{resolved}");

    let o = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .current_dir(dir)
        .env("CAPLAB_TRAIN__EPOCHS", "7")
        .args(["run", "tiny.toml", "--dry-run"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&o.stdout).contains("epochs = 7"));

    let o = caplab(dir, &["run", "missing.toml"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.toml"));
}

#[test]
fn missing_dataset_points_at_synth_and_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = TINY_SPEC
        .replace("kind = \"synth\"", "kind = \"flickr8k\"")
        .replace("root = \"shapes\"", "root = \"no/such/flickr8k\"");
    write(&dir.join("f8k.toml"), &spec);
    let o = caplab(dir, &["run", "f8k.toml", "--quiet"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("no/such/flickr8k"), "{e}");
    assert!(e.contains("caplab data synth"), "{e}");
    assert!(
        !dir.join("runs").exists(),
        "a failed run must not create a run directory"
    );
}

#[test]
fn tiny_run_trains_evaluates_and_reports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), TINY_SPEC);

    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    assert!(
        dir.join("shapes/captions.txt").is_file(),
        "synth data generated on first use"
    );

    let runs = run_dirs(&dir.join("runs/tiny"));
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    for f in [
        "spec.toml",
        "vocab.json",
        "captions.json",
        "report.json",
        "report.md",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let checkpoints: Vec<String> = std::fs::read_dir(run.join("checkpoint"))
        .expect("checkpoint dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        checkpoints.iter().any(|c| c.starts_with("model-")),
        "{checkpoints:?}"
    );
    let events: Vec<PathBuf> = run_dirs(&run.join("tensorboard"));
    assert!(
        events
            .iter()
            .any(|p| p.to_string_lossy().contains("events.out.tfevents")),
        "{events:?}"
    );

    let captions: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("captions.json")).expect("read"))
            .expect("captions.json is JSON");
    let captions = captions.as_array().expect("a COCO results array");
    assert_eq!(captions.len(), 12, "one caption per test image");
    assert!(captions
        .iter()
        .all(|c| c["image_id"].is_string() && c["caption"].is_string()));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).expect("read"))
            .expect("report.json is JSON");
    let epochs = report["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 3);
    let loss = |i: usize| epochs[i]["train_loss"].as_f64().expect("train loss");
    assert!(loss(2) < loss(0), "training loss went down: {epochs:?}");
    // Each epoch's wall and process CPU time: in history.jsonl, the report and its table.
    let times = report["epoch_times"].as_array().expect("epoch_times");
    assert_eq!(times.len(), 3);
    for t in times {
        let (wall, cpu) = (
            t["wall_s"].as_f64().expect("wall_s"),
            t["cpu_percent"].as_f64(),
        );
        assert!(wall > 0.0 && cpu.is_some_and(|c| c > 0.0), "{t}");
    }
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    for line in history.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("history line");
        assert!(e["cpu_s"].as_f64().is_some_and(|c| c > 0.0), "{line}");
    }
    let md = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    assert!(md.contains("| val CIDEr | time (s) | CPU % |"), "{md}");
    let test = report["test"].as_array().expect("test rows");
    assert_eq!(test.len(), 3, "model + two image-blind rows");
    assert!(test[0]["metrics"]["CIDEr"].as_f64().is_some());
    assert!(test[0]["metrics"]["BLEU-4"].as_f64().is_some());
    assert_eq!(report["seed"].as_u64(), Some(3));
    // `started` is when the run started, not when the report was written: before spec.toml,
    // which is written into the new run directory before training.
    let started =
        chrono::DateTime::parse_from_rfc3339(report["started"].as_str().expect("started"))
            .expect("RFC 3339");
    let spec_written: chrono::DateTime<chrono::Utc> = std::fs::metadata(run.join("spec.toml"))
        .and_then(|m| m.modified())
        .expect("mtime")
        .into();
    assert!(started <= spec_written, "{started} vs {spec_written}");
    let md = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    assert!(md.contains("blind: zero image feature"));
    // report.html: metrics with intervals, curves, gallery; rendered by a real browser.
    let html = std::fs::read_to_string(run.join("report.html")).expect("report.html");
    assert!(
        html.contains("blind: most frequent train caption"),
        "metric rows"
    );
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "loss, BLEU-4 and CIDEr curves"
    );
    assert!(html.contains("Best 8 by CIDEr") && html.contains("Worst 8 by CIDEr"));
    assert!(
        html.contains("data:image/jpeg;base64,"),
        "embedded thumbnails"
    );
    assert!(!html.contains("<script"));
    if Command::new("chromium").arg("--version").output().is_ok() {
        run_script(
            "python3",
            "check_html.py",
            &run.join("report.html"),
            "report.html did not render",
        );
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install chromium so report.html is rendered in a real browser"
        );
    }

    if let Ok(python) = std::env::var("CAPLAB_TB_PYTHON") {
        run_script(
            &python,
            "check_tensorboard.py",
            &run.join("tensorboard"),
            "TensorBoard could not read the event file",
        );
        // pycocoevalcap itself reproduces the report from the run directory alone.
        run_script(
            &python,
            "check_run_dir.py",
            run,
            "pycocoevalcap disagrees with the report",
        );
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CAPLAB_TB_PYTHON so TensorBoard reads the event file back"
        );
    }

    // A second run of the same spec gets its own directory and, seeded, the same numbers.
    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "second run failed: {}", stderr(&o));
    let runs = run_dirs(&dir.join("runs/tiny"));
    assert_eq!(runs.len(), 2, "a run never reuses another's directory");
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[1].join("report.json")).expect("read"))
            .expect("json");
    assert_eq!(
        second["epochs"], report["epochs"],
        "same spec and seed, same numbers"
    );
    assert_eq!(second["test"], report["test"]);

    let o = caplab(
        dir,
        &[
            "compare",
            &runs[0].to_string_lossy(),
            &runs[1].to_string_lossy(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("CIDEr"));
}

#[test]
fn attention_run_writes_attention_overlays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = TINY_SPEC
        .replace("image_size = 32", "image_size = 64")
        .replace(
            "[model.decoder]\nembed_dim = 32\nhidden_dim = 48\n",
            "[model.attention]\nembed_dim = 32\nhidden_dim = 48\nattention_dim = 16\n",
        )
        .replace("epochs = 3", "epochs = 1");
    write(&dir.join("att.toml"), &spec);
    let o = caplab(dir, &["run", "att.toml", "--quiet"]);
    assert!(o.status.success(), "attention run failed: {}", stderr(&o));
    let runs = run_dirs(&dir.join("runs/tiny"));
    assert_eq!(runs.len(), 1);
    let overlays: Vec<PathBuf> = run_dirs(&runs[0].join("attention"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(
        overlays.len(),
        3,
        "one overlay per report sample: {overlays:?}"
    );
    let md = std::fs::read_to_string(runs[0].join("report.md")).expect("report.md");
    assert!(md.contains("![attention of"), "{md}");

    // An RNN decoder section next to an attention section is a spec error.
    let both = spec.replace(
        "[model.attention]",
        "[model.decoder]\ncell = \"gru\"\n\n[model.attention]",
    );
    write(&dir.join("both.toml"), &both);
    let o = caplab(dir, &["run", "both.toml", "--dry-run"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("model.attention"), "{}", stderr(&o));
}

/// caplab's own `vit_tiny` encoder under the Transformer decoder, end to end: a one-epoch run,
/// `caplab eval` giving back the run's test metrics, `caplab caption` on an image; an image size
/// that is not a whole number of its 8-pixel patches is refused, naming the key.
#[test]
fn a_vit_tiny_transformer_run_trains_evaluates_and_captions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = TINY_SPEC
        .replace("arch = \"resnet_tiny\"", "arch = \"vit_tiny\"")
        .replace(
            "[model.decoder]\nembed_dim = 32\nhidden_dim = 48\n",
            "[model.transformer]\nnum_layers = 1\nd_model = 16\nnum_heads = 2\nd_ff = 32\n",
        )
        .replace("epochs = 3", "epochs = 1");
    write(&dir.join("vit.toml"), &spec);
    let o = caplab(dir, &["run", "vit.toml", "--quiet"]);
    assert!(o.status.success(), "vit_tiny run failed: {}", stderr(&o));
    let run = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    let own = report_of(&run);
    assert_eq!(
        own["spec"]["model.encoder.arch"], "\"vit_tiny\"",
        "{}",
        own["spec"]
    );

    let o = caplab(dir, &["eval", &run.to_string_lossy(), "--quiet"]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let evals = run_dirs(&run.join("evals"));
    assert_eq!(report_of(&evals[0])["test"], own["test"]);

    let o = caplab(
        dir,
        &[
            "caption",
            &run.to_string_lossy(),
            "shapes/images/000001.jpg",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "caption failed: {}", stderr(&o));
    assert!(
        !String::from_utf8_lossy(&o.stdout).trim().is_empty(),
        "a caption"
    );

    write(
        &dir.join("odd.toml"),
        &spec.replace("image_size = 32", "image_size = 36"),
    );
    let o = caplab(dir, &["run", "odd.toml", "--dry-run"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "key preprocess.image_size must be a multiple of vit_tiny's patch size 8, got 36"
        ),
        "{}",
        stderr(&o)
    );
}

/// Writes a torchvision-layout `.safetensors` for `resnet_tiny` with values from `seed`.
fn write_tiny_weights(path: &Path, seed: u32) {
    use burn::backend::NdArray;
    use caplab_models::encoder::{weights::expected_torchvision_params, Arch, EncoderConfig};
    let encoder = EncoderConfig::new(Arch::ResnetTiny).init::<NdArray>(&Default::default());
    let params = expected_torchvision_params::<NdArray, _>(&encoder);
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, (key, shape)) in params.iter().enumerate() {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|j| {
                if key.ends_with("running_var") {
                    1.0
                } else {
                    let h = (j as u32 ^ (i as u32).wrapping_mul(2654435761) ^ seed)
                        .wrapping_mul(2246822519);
                    ((h >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
                }
            })
            .collect();
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((key.clone(), shape.clone(), bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = buffers
        .iter()
        .map(|(k, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("tensor view");
            (k.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).expect("write weights");
}

#[test]
fn frozen_encoder_reuses_the_feature_cache_until_weights_or_preprocessing_change() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = TINY_SPEC
        .replace(
            "arch = \"resnet_tiny\"",
            "arch = \"resnet_tiny\"\ntrainable = \"frozen\"",
        )
        .replace("epochs = 3", "epochs = 1");
    write(&dir.join("frozen.toml"), &spec);
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["run", "frozen.toml", "--quiet"];
        args.extend_from_slice(extra);
        let before = run_dirs(&dir.join("runs/tiny"));
        let o = caplab(dir, &args);
        assert!(o.status.success(), "run failed: {}", stderr(&o));
        let new: Vec<PathBuf> = run_dirs(&dir.join("runs/tiny"))
            .into_iter()
            .filter(|r| !before.contains(r))
            .collect();
        assert_eq!(new.len(), 1, "each run adds one run directory");
        report_of(&new[0])
    };
    let cache = |r: &serde_json::Value| {
        (
            r["feature_cache"]["path"]
                .as_str()
                .expect("cache path")
                .to_string(),
            r["feature_cache"]["built"].as_bool().expect("built flag"),
            r["images_decoded"].as_u64().expect("decoded count"),
        )
    };

    let (path1, built, decoded) = cache(&run(&[]));
    assert!(built, "the first run encodes the images");
    assert_eq!(decoded, 48);
    let (path2, built, decoded) = cache(&run(&[]));
    assert_eq!(path2, path1);
    assert!(!built, "the second run reuses the cache");
    assert_eq!(decoded, 0, "no image is decoded or encoded again");

    let (path3, built, _) = cache(&run(&["--set", "preprocess.image_size=48"]));
    assert!(
        built && path3 != path1,
        "new preprocessing, new cache entry"
    );

    let weights = dir.join("tiny.safetensors");
    write_tiny_weights(&weights, 1);
    let set = "model.encoder.weights=\"tiny.safetensors\"";
    let (path4, built, _) = cache(&run(&["--set", set]));
    assert!(built && path4 != path1, "weights change the cache entry");
    let (path5, built, _) = cache(&run(&["--set", set]));
    assert!(!built && path5 == path4);
    write_tiny_weights(&weights, 2);
    let (path6, built, _) = cache(&run(&["--set", set]));
    assert!(
        built && path6 != path4,
        "a changed weights file invalidates the cache"
    );
}

#[test]
fn word_vectors_and_scheduled_sampling_train_and_bad_files_create_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = TINY_SPEC.replace("epochs = 3", "epochs = 1");
    write(&dir.join("wv.toml"), &spec);
    let vec32 = |word: &str, v: f32| {
        let nums: Vec<String> = (0..32)
            .map(|i| format!("{}", v + i as f32 * 0.01))
            .collect();
        format!("{word} {}\n", nums.join(" "))
    };
    write(
        &dir.join("bad.txt"),
        &format!("{}square 1 2\n", vec32("red", 0.1)),
    );
    let o = caplab(
        dir,
        &[
            "run",
            "wv.toml",
            "--quiet",
            "--set",
            "model.word_vectors=\"bad.txt\"",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("bad.txt:2") && e.contains("model.word_vectors"),
        "{e}"
    );
    assert!(
        !dir.join("runs").exists(),
        "a failed run creates no run directory"
    );

    write(
        &dir.join("good.txt"),
        &format!("{}{}zebra 1\n", vec32("red", 0.1), vec32("square", 0.2)),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .current_dir(dir)
        .env("CAPLAB_LOG", "info")
        .args([
            "run",
            "wv.toml",
            "--set",
            "model.word_vectors=\"good.txt\"",
            "--set",
            "train.scheduled_sampling={ max_prob = 0.5, ramp_epochs = 1 }",
        ])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("word vectors: 2 of"), "{}", stderr(&o));
    // Logs to a pipe carry no colour codes.
    assert!(
        !stderr(&o).contains('\u{1b}'),
        "ANSI codes in piped logs: {:?}",
        stderr(&o)
    );
}

const RESUME_SPEC_EPOCHS: usize = 4;

/// When to kill a run, judged from its directory.
type Moment = dyn Fn(&Path) -> bool;

#[test]
fn a_run_killed_at_any_moment_resumes_to_the_identical_result() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // A plateau schedule that reduces the rate, so its state has to survive the interruption.
    let spec = TINY_SPEC.replace("epochs = 3", &format!("epochs = {RESUME_SPEC_EPOCHS}"))
        + "\n[train.lr_schedule]\nkind = \"plateau\"\npatience = 1\nfactor = 0.5\n";
    write(&dir.join("tiny.toml"), &spec);
    let args = ["run", "tiny.toml", "--quiet"];

    let o = caplab(dir, &args);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let whole = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    let expected = outcome(&whole);
    let epochs = expected.0["epochs"].as_array().expect("epochs").clone();
    assert_eq!(epochs.len(), RESUME_SPEC_EPOCHS);
    let lrs: Vec<f64> = epochs
        .iter()
        .map(|e| e["lr"].as_f64().expect("lr"))
        .collect();
    assert!(
        lrs.iter().any(|lr| *lr < 5e-3),
        "the plateau schedule reduced the rate: {lrs:?}"
    );
    let epoch_s: f64 = std::fs::read_to_string(whole.join("history.jsonl"))
        .expect("history")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("line")["wall_s"]
                .as_f64()
                .expect("wall_s")
        })
        .sum::<f64>()
        / RESUME_SPEC_EPOCHS as f64;

    let moments: [(&str, Box<Moment>); 4] = [
        (
            "before the first checkpoint",
            Box::new(|run: &Path| run.join("spec.toml").is_file()),
        ),
        (
            "after epoch 1",
            Box::new(|run: &Path| run.join("checkpoint/scheduler-1.mpk").is_file()),
        ),
        (
            "in the middle of epoch 3",
            Box::new(move |run: &Path| {
                if history_lines(run) < 2 {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_secs_f64(epoch_s * 0.5));
                true
            }),
        ),
        (
            "during the evaluation",
            Box::new(|run: &Path| history_lines(run) == RESUME_SPEC_EPOCHS),
        ),
    ];
    for (when, ready) in moments {
        let run = run_and_kill(dir, &args, ready.as_ref());
        // The environment of the resuming shell must not change the resumed run.
        let o = Command::new(env!("CARGO_BIN_EXE_caplab"))
            .current_dir(dir)
            .env_remove("CAPLAB_LOG")
            .env("CAPLAB_TRAIN__LR", "0.5")
            .args(["resume", &run.to_string_lossy(), "--quiet"])
            .output()
            .expect("resume runs");
        assert!(o.status.success(), "resume {when} failed: {}", stderr(&o));
        let got = outcome(&run);
        assert_eq!(got.0, expected.0, "report after a kill {when}");
        assert_eq!(got.1, expected.1, "captions after a kill {when}");
        assert_eq!(history_lines(&run), RESUME_SPEC_EPOCHS, "{when}");
    }

    // A finished run is not resumed.
    let o = caplab(dir, &["resume", &whole.to_string_lossy(), "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already finished"), "{}", stderr(&o));
}

#[test]
fn score_compares_two_results_files_and_names_bad_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("captions.txt"),
        "image,caption\n\
         a.jpg,\"A red circle, left of a blue square.\"\n\
         a.jpg,a red circle next to a blue square\n\
         b.jpg,A green star on a white background\n\
         b.jpg,\"a green star, small\"\n",
    );
    write(
        &dir.join("good.json"),
        r#"[{"image_id": "a.jpg", "caption": "a red circle left of a blue square"},
            {"image_id": "b.jpg", "caption": "a green star on a white background"}]"#,
    );
    write(
        &dir.join("weak.json"),
        r#"[{"image_id": "a.jpg", "caption": "a shape"},
            {"image_id": "b.jpg", "caption": "a shape"}]"#,
    );
    let o = caplab(
        dir,
        &[
            "score",
            "--refs",
            "captions.txt",
            "--results",
            "good.json",
            "--compare",
            "weak.json",
            "--out",
            "scores.json",
            "--bootstrap-samples",
            "200",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scores.json")).expect("read"))
            .expect("json");
    let good = scores["corpus"]["CIDEr"].as_f64().expect("CIDEr");
    assert!(good > 1.0, "{scores}");
    assert!(scores["per_image"]["a.jpg"]["BLEU-4"].as_f64().is_some());
    let diff = scores["comparison"]["CIDEr"]["diff"]["estimate"]
        .as_f64()
        .expect("diff");
    assert!(diff < 0.0, "the weak system scores lower: {diff}");

    write(
        &dir.join("unknown.json"),
        r#"[{"image_id": "zzz.jpg", "caption": "x"}]"#,
    );
    let o = caplab(
        dir,
        &[
            "score",
            "--refs",
            "captions.txt",
            "--results",
            "unknown.json",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("unknown.json") && e.contains("zzz.jpg"), "{e}");
    write(&dir.join("broken.json"), "[{\"image_id\": ");
    let o = caplab(
        dir,
        &[
            "score",
            "--refs",
            "captions.txt",
            "--results",
            "broken.json",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("broken.json"), "{}", stderr(&o));
}

#[test]
fn plateau_schedule_drops_the_rate_and_trains_reproducibly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), TINY_SPEC);
    let set = "train.lr_schedule={ kind = \"plateau\", patience = 1, factor = 0.1 }";
    for _ in 0..2 {
        let o = caplab(
            dir,
            &[
                "run",
                "tiny.toml",
                "--quiet",
                "--set",
                set,
                "--set",
                "train.epochs=4",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let runs = run_dirs(&dir.join("runs/tiny"));
    assert_eq!(runs.len(), 2);
    let epochs = report_of(&runs[0])["epochs"].clone();
    assert_eq!(epochs, report_of(&runs[1])["epochs"]);
    // Each epoch's rate is 5e-3 · 0.1^(epochs so far without improving on the best CIDEr).
    let rows = epochs.as_array().expect("epochs");
    let mut best = f64::NEG_INFINITY;
    let mut decays = 0;
    let mut drops = 0;
    for row in rows {
        let lr = row["lr"].as_f64().expect("lr");
        let expected = 5e-3 * 0.1f64.powi(decays);
        assert!(
            (lr - expected).abs() < 1e-12,
            "epoch {}: lr {lr}, expected {expected}",
            row["epoch"]
        );
        if decays > 0 {
            drops += 1;
        }
        let cider = row["val_cider"].as_f64().expect("val_cider");
        if cider > best {
            best = cider;
        } else {
            decays += 1;
        }
    }
    assert!(drops > 0, "the rate dropped at least once: {rows:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn eval_reproduces_the_runs_metrics_and_decodes_again_without_training() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), TINY_SPEC);
    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let run = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    let before: Vec<String> = walk(&run);
    let own = report_of(&run);

    // Same settings, best checkpoint: the run's own test metrics and captions, exactly.
    let o = caplab(dir, &["eval", &run.to_string_lossy(), "--quiet"]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let evals = run_dirs(&run.join("evals"));
    assert_eq!(evals.len(), 1);
    let same = report_of(&evals[0]);
    assert_eq!(same["test"], own["test"]);
    // The evaluation's own wall time: no training, some loading, captioning and scoring.
    let wall = &same["wall_time"];
    assert_eq!(wall["train_s"].as_f64(), Some(0.0), "{wall}");
    let (prepare, eval, total) = (
        wall["prepare_s"].as_f64().expect("prepare_s"),
        wall["eval_s"].as_f64().expect("eval_s"),
        wall["total_s"].as_f64().expect("total_s"),
    );
    assert!(prepare > 0.0 && eval > 0.0, "{wall}");
    assert!(total >= prepare + eval, "{wall}");
    assert_eq!(
        std::fs::read_to_string(evals[0].join("captions.json")).expect("captions"),
        std::fs::read_to_string(run.join("captions.json")).expect("captions")
    );
    let unchanged: Vec<String> = walk(&run)
        .into_iter()
        .filter(|p| !p.starts_with("evals") && !p.starts_with("tensorboard"))
        .collect();
    let before_kept: Vec<String> = before
        .into_iter()
        .filter(|p| !p.starts_with("tensorboard"))
        .collect();
    assert_eq!(unchanged, before_kept, "the run's own files are untouched");

    // Beam 5 without retraining.
    let o = caplab(
        dir,
        &[
            "eval",
            &run.to_string_lossy(),
            "--quiet",
            "--set",
            "eval.search={ method = \"beam\", beam_size = 5, max_len = 12 }",
        ],
    );
    assert!(o.status.success(), "beam eval failed: {}", stderr(&o));
    let first = evals[0].clone();
    // Eval directories are named by second and a random id: the new one is the other one.
    let evals: Vec<PathBuf> = std::iter::once(first.clone())
        .chain(
            run_dirs(&run.join("evals"))
                .into_iter()
                .filter(|d| *d != first),
        )
        .collect();
    assert_eq!(evals.len(), 2);
    let eval_toml = std::fs::read_to_string(evals[1].join("eval.toml")).expect("eval.toml");
    assert!(eval_toml.contains("beam_size = 5"), "{eval_toml}");
    assert!(report_of(&evals[1])["test"][0]["metrics"]["CIDEr"].is_number());

    // The run directory alone reproduces its numbers: caplab score on refs.json + captions.json.
    let o = caplab(
        dir,
        &[
            "score",
            "--refs",
            &run.join("refs.json").to_string_lossy(),
            "--results",
            &run.join("captions.json").to_string_lossy(),
            "--out",
            "rescored.json",
        ],
    );
    assert!(o.status.success(), "score failed: {}", stderr(&o));
    let rescored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rescored.json")).expect("out"))
            .expect("json");
    let per_image: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("per_image.json")).expect("per_image.json"),
    )
    .expect("json");
    assert!(per_image["model"]
        .as_object()
        .is_some_and(|m| m.len() == 12));
    assert_eq!(rescored["per_image"], per_image["model"]);
    let signature = own["metric_signature"].as_str().expect("signature");
    assert!(
        signature.starts_with("tok:ptb-3.4.1|meteor:"),
        "{signature}"
    );
    assert_eq!(rescored["signature"].as_str(), Some(signature));
    for (metric, value) in own["test"][0]["metrics"].as_object().expect("metrics") {
        assert_eq!(&rescored["corpus"][metric], value, "{metric}");
    }

    // Only eval.* keys change; anything else is an error naming the key, creating nothing.
    let o = caplab(
        dir,
        &["eval", &run.to_string_lossy(), "--set", "train.lr=0.1"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("train.lr"), "{}", stderr(&o));
    let o = caplab(dir, &["eval", &run.to_string_lossy(), "--checkpoint", "99"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("epoch 99"), "{}", stderr(&o));
    assert_eq!(run_dirs(&run.join("evals")).len(), 2);

    // A copy of the run directory elsewhere (another machine's) evaluates the same.
    let copy = dir.join("elsewhere/copied-run");
    copy_dir(&run, &copy);
    std::fs::remove_dir_all(copy.join("evals")).expect("rm evals");
    let o = caplab(dir, &["eval", &copy.to_string_lossy(), "--quiet"]);
    assert!(o.status.success(), "eval of a copy failed: {}", stderr(&o));
    let copied = run_dirs(&copy.join("evals")).pop().expect("an eval");
    assert_eq!(report_of(&copied)["test"], own["test"]);

    // compare reads eval reports like run reports.
    let o = caplab(
        dir,
        &[
            "compare",
            &run.to_string_lossy(),
            &evals[1].to_string_lossy(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Every file below `root`, relative, sorted.
fn walk(root: &Path) -> Vec<String> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("below root");
                let bytes = std::fs::read(&p).expect("read");
                out.push(format!("{} {}", rel.display(), bytes.len()));
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn caption_names_and_skips_unreadable_files_and_captions_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("tiny.toml"),
        &TINY_SPEC.replace("epochs = 3", "epochs = 1"),
    );
    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let run = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    // A folder of photos: two good ones in a sub-folder, one that is not an image.
    let photos = dir.join("photos/sub");
    std::fs::create_dir_all(&photos).expect("mkdir");
    std::fs::copy(dir.join("shapes/images/000001.jpg"), photos.join("b.jpg")).expect("copy");
    std::fs::copy(dir.join("shapes/images/000002.jpg"), photos.join("a.jpg")).expect("copy");
    write(&dir.join("photos/broken.jpg"), "not a jpeg");
    let o = caplab(
        dir,
        &[
            "caption",
            &run.to_string_lossy(),
            "photos",
            "--json",
            "--quiet",
        ],
    );
    assert!(!o.status.success(), "a failed file sets the exit status");
    assert!(stderr(&o).contains("broken.jpg"), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["image_id"].as_str().expect("image_id"))
        .collect();
    assert_eq!(
        names,
        vec!["photos/sub/a.jpg", "photos/sub/b.jpg"],
        "name order"
    );
    // One file alone, plain output: the same caption as in the batch above.
    let o = caplab(
        dir,
        &[
            "caption",
            &run.to_string_lossy(),
            "photos/sub/a.jpg",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(
        line,
        format!(
            "photos/sub/a.jpg\t{}",
            lines[0]["caption"].as_str().expect("caption")
        )
    );
    let o = caplab(
        dir,
        &[
            "caption",
            &run.to_string_lossy(),
            "photos/sub",
            "--search",
            "beam",
            "--beam-size",
            "3",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

/// The bad inputs a new user tried that were not handled: each fails with an error naming the
/// key, file or line, before any run directory exists.
#[test]
fn bad_inputs_fail_with_their_place_before_a_run_directory_exists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), TINY_SPEC);

    let nothing_created = |what: &str| {
        assert!(
            run_dirs(&dir.join("runs/tiny")).is_empty(),
            "{what}: no run directory may be left behind"
        );
    };
    let fails_with = |args: &[&str], needles: &[&str], what: &str| {
        let o = caplab(dir, args);
        assert!(!o.status.success(), "{what} must fail");
        let e = stderr(&o);
        assert!(!e.contains("panicked"), "{what}: {e}");
        for n in needles {
            assert!(e.contains(n), "{what}: {n:?} not in {e}");
        }
        nothing_created(what);
    };

    // Spec values the owning crates reject, naming the full key and the allowed range.
    for (set, key, allowed) in [
        (
            "model.decoder.num_layers=0",
            "model.decoder.num_layers",
            "≥ 1",
        ),
        (
            "preprocess.image_size=100000",
            "preprocess.image_size",
            "1024",
        ),
        ("eval.search.beam_size=0", "eval.search", "beam_size"),
        ("eval.search.max_len=0", "max_len", "≥ 1"),
        ("train.batch_size=0", "train.batch_size", "≥ 1"),
    ] {
        fails_with(
            &["run", "tiny.toml", "--quiet", "--set", set],
            &[key, allowed],
            set,
        );
    }

    // A weights file that is missing, or not a checkpoint.
    fails_with(
        &[
            "run",
            "tiny.toml",
            "--quiet",
            "--set",
            "model.encoder.weights=\"nope.safetensors\"",
        ],
        &["nope.safetensors"],
        "missing weights",
    );
    write(
        &dir.join("junk.safetensors"),
        "this is not a safetensors file",
    );
    fails_with(
        &[
            "run",
            "tiny.toml",
            "--quiet",
            "--set",
            "model.encoder.weights=\"junk.safetensors\"",
        ],
        &["junk.safetensors"],
        "junk weights",
    );

    // The runs above generated the synthetic dataset (it is made before the model is built).
    assert!(dir.join("shapes/captions.txt").is_file());

    // A truncated JPEG in the dataset (the first third of the file).
    let img = dir.join("shapes/images/000003.jpg");
    let bytes = std::fs::read(&img).expect("jpeg");
    std::fs::write(&img, &bytes[..bytes.len() / 3]).expect("truncate");
    fails_with(
        &["run", "tiny.toml", "--quiet"],
        &["000003.jpg"],
        "truncated JPEG",
    );
    std::fs::write(&img, &bytes).expect("restore");

    // captions.txt: an unterminated quote names its line; a header without rows names the file.
    let captions = dir.join("shapes/captions.txt");
    let original = std::fs::read_to_string(&captions).expect("captions");
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    lines[4] = "000002.jpg,\"a red circle".to_string();
    write(&captions, &(lines.join("\n") + "\n"));
    fails_with(
        &["run", "tiny.toml", "--quiet"],
        &["captions.txt", "5"],
        "unterminated quote",
    );
    write(&captions, &format!("{}\n", lines[0]));
    fails_with(
        &["run", "tiny.toml", "--quiet"],
        &["captions.txt"],
        "header only",
    );
    write(&captions, &original);
}

#[test]
fn sweep_trials_equal_standalone_runs_and_a_rerun_skips_finished_trials() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("tiny.toml"),
        &TINY_SPEC.replace("epochs = 3", "epochs = 1"),
    );
    // A bad value in the last trial fails before any trial starts or any directory exists.
    let o = caplab(
        dir,
        &[
            "sweep",
            "tiny.toml",
            "--seeds",
            "1,2",
            "--set",
            "sweep.grid={ \"model.decoder.hidden_dim\" = [8, 0] }",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("sweep trial 2")
            && e.contains("model.decoder.hidden_dim must be an integer ≥ 1"),
        "{e}"
    );
    assert!(
        !dir.join("runs").exists(),
        "nothing created before the error"
    );

    // Two seeds, two at a time.
    let o = caplab(
        dir,
        &["sweep", "tiny.toml", "--seeds", "1,2", "--jobs", "2", "-q"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let sweep_dir = dir.join(stdout.lines().last().expect("sweep dir printed"));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sweep_dir.join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest parses");
    let trials = manifest["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 2);
    for t in trials {
        assert_eq!(t["status"], "finished", "{manifest}");
    }
    let trial_dir = |i: usize| sweep_dir.join(trials[i]["run_dir"].as_str().expect("run_dir"));

    // Trial seed=2 equals a standalone run with seed 2 (run alone, all cores).
    let o = caplab(
        dir,
        &["run", "tiny.toml", "--set", "experiment.seed=2", "-q"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let alone = report_of(
        dir.join(String::from_utf8_lossy(&o.stdout).trim())
            .parent()
            .expect("run dir"),
    );
    let trial = report_of(&trial_dir(1));
    assert_eq!(trial["seed"].as_u64(), Some(2));
    assert_eq!(trial["test"], alone["test"]);
    assert_eq!(trial["epochs"], alone["epochs"]);

    // Re-running the same command touches no finished trial.
    let before = std::fs::metadata(trial_dir(0).join("report.json"))
        .and_then(|m| m.modified())
        .expect("mtime");
    let o = caplab(dir, &["sweep", "tiny.toml", "--seeds", "1,2", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        dir.join(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .expect("dir")
        ),
        sweep_dir
    );
    let after = std::fs::metadata(trial_dir(0).join("report.json"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after);

    // A trial whose report is missing (stopped after training) is resumed to the same result.
    let first = report_of(&trial_dir(0));
    std::fs::remove_file(trial_dir(0).join("report.json")).expect("rm report");
    let o = caplab(dir, &["sweep", "tiny.toml", "--seeds", "1,2", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report_of(&trial_dir(0))["test"], first["test"]);

    // `--status` lists every trial with its state.
    let o = caplab(
        dir,
        &["sweep", sweep_dir.to_str().expect("utf-8"), "--status"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        table.contains("2 trials") && table.contains("2 finished"),
        "{table}"
    );
}

/// The tiny synthetic set rewritten as COCO: one annotation file with integer image ids
/// (1000 + i), images in `coco/train2014/`, split by the synth set's Karpathy file.
fn write_coco_copy(dir: &Path) {
    let o = caplab(
        dir,
        &[
            "data", "synth", "--out", "shapes", "--images", "48", "--size", "64", "--seed", "5",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.join("shapes/captions.txt")).expect("captions.txt");
    let mut images: Vec<String> = Vec::new();
    let mut annotations = Vec::new();
    for line in text.lines().skip(1) {
        let (image, caption) = line.split_once(',').expect("image,caption");
        if !images.iter().any(|i| i == image) {
            images.push(image.to_string());
        }
        let id = 1000 + images.iter().position(|i| i == image).expect("listed");
        annotations.push(serde_json::json!({
            "image_id": id, "id": annotations.len() + 1, "caption": caption.trim_matches('"')
        }));
    }
    let coco = dir.join("coco");
    std::fs::create_dir_all(coco.join("annotations")).expect("mkdir");
    std::fs::rename(dir.join("shapes/images"), coco.join("train2014")).expect("move images");
    std::fs::copy(dir.join("shapes/splits.json"), coco.join("splits.json")).expect("copy splits");
    let json = serde_json::json!({
        "images": images.iter().enumerate()
            .map(|(i, f)| serde_json::json!({ "id": 1000 + i, "file_name": f }))
            .collect::<Vec<_>>(),
        "annotations": annotations,
    });
    write(
        &coco.join("annotations/captions_train2014.json"),
        &json.to_string(),
    );
}

#[test]
fn a_coco_run_writes_integer_image_ids_that_caplab_score_and_pycocoevalcap_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_coco_copy(dir);
    let spec = TINY_SPEC.replace("epochs = 3", "epochs = 1").replace(
        "kind = \"synth\"\nroot = \"shapes\"",
        "kind = \"coco\"\nroot = \"coco\"\nsplits = \"splits.json\"",
    );
    write(&dir.join("coco.toml"), &spec);
    let o = caplab(dir, &["run", "coco.toml", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = dir
        .join(String::from_utf8_lossy(&o.stdout).trim())
        .parent()
        .expect("run dir")
        .to_path_buf();
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join(name)).expect(name)).expect("json")
    };
    let captions = read("captions.json");
    let captions = captions.as_array().expect("results array");
    assert!(!captions.is_empty());
    for c in captions {
        let id = c["image_id"].as_u64().expect("integer image_id");
        assert!((1000..1048).contains(&id), "{c}");
    }
    let refs = read("refs.json");
    for a in refs["annotations"].as_array().expect("annotations") {
        assert!(a["image_id"].as_u64().is_some(), "{a}");
    }
    // Each integer id's file, as COCO's `file_name` and where the run read it (compare's gallery).
    for i in refs["images"].as_array().expect("images") {
        let name = i["file_name"].as_str().expect("file_name");
        let path = i["path"].as_str().expect("path");
        assert!(i["id"].as_u64().is_some() && path.ends_with(name), "{i}");
    }
    // caplab score reproduces the report from the two files.
    let o = caplab(
        &run,
        &[
            "score",
            "--refs",
            "refs.json",
            "--results",
            "captions.json",
            "--out",
            "scores.json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let scores = read("scores.json");
    let report = read("report.json");
    for (metric, value) in report["test"][0]["metrics"].as_object().expect("metrics") {
        assert_eq!(
            scores["corpus"][metric].as_f64(),
            value.as_f64(),
            "{metric}"
        );
    }
    if let Ok(python) = std::env::var("CAPLAB_TB_PYTHON") {
        run_script(
            &python,
            "check_run_dir.py",
            &run,
            "pycocoevalcap disagrees with the report",
        );
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CAPLAB_TB_PYTHON so pycocoevalcap checks the run directory"
        );
    }
}

#[test]
fn an_scst_run_fine_tunes_after_cross_entropy_reports_both_rows_and_resumes_identically() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let spec = TINY_SPEC.replace("epochs = 3", "epochs = 2")
        + "\n[train.scst]\nepochs = 2\nlr = 1e-3\nsamples_per_image = 3\nmax_len = 10\n";
    write(&dir.join("tiny.toml"), &spec);
    let args = ["run", "tiny.toml", "--quiet"];
    let o = caplab(dir, &args);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let whole = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");

    // Two cross-entropy epochs, then two SCST epochs at the SCST rate, with their rewards.
    let history: Vec<serde_json::Value> = std::fs::read_to_string(whole.join("history.jsonl"))
        .expect("history")
        .lines()
        .map(|l| serde_json::from_str(l).expect("history line"))
        .collect();
    let phases: Vec<&str> = history
        .iter()
        .map(|e| e["phase"].as_str().expect("phase"))
        .collect();
    assert_eq!(phases, ["xe", "xe", "scst", "scst"]);
    for e in &history[2..] {
        assert_eq!(e["lr"].as_f64(), Some(1e-3), "{e}");
        let reward = e["train"]["Reward"]
            .as_f64()
            .expect("an SCST epoch's mean reward");
        assert!(reward.is_finite() && reward >= 0.0, "{e}");
        assert!(e["train"]["GreedyReward"].as_f64().is_some(), "{e}");
        assert!(e["train"]["RewardSeconds"].as_f64().expect("reward time") > 0.0);
    }
    assert!(history[0]["train"].get("Reward").is_none());

    // The report: the selected SCST epoch, then the best cross-entropy epoch, side by side.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("report.json")).expect("read"))
            .expect("report.json");
    let best = report["best_epoch"].as_u64().expect("best epoch");
    assert!(
        best > 2,
        "the evaluated checkpoint is an SCST epoch: {best}"
    );
    let test = report["test"].as_array().expect("test rows");
    let names: Vec<&str> = test
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], "model");
    assert!(
        names[1].starts_with("xe: best cross-entropy epoch "),
        "{names:?}"
    );
    assert!(test[1]["metrics"]["CIDEr"].as_f64().is_some());
    let signature = report["metric_signature"].as_str().expect("signature");
    assert!(
        signature.contains("scst-reward:cider-D=1,bleu4=0,df=train,eos=yes"),
        "{signature}"
    );
    let md = std::fs::read_to_string(whole.join("report.md")).expect("report.md");
    assert!(md.contains("xe: best cross-entropy epoch"), "{md}");

    // Killed in the middle of the second SCST epoch, the run resumes to the identical result.
    let expected = outcome(&whole);
    let epoch_s: f64 = history[3]["wall_s"].as_f64().expect("wall_s");
    let run = run_and_kill(dir, &args, &move |run: &Path| {
        if history_lines(run) < 3 {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(epoch_s * 0.5));
        true
    });
    let o = caplab(dir, &["resume", &run.to_string_lossy(), "--quiet"]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    let got = outcome(&run);
    assert_eq!(got.0, expected.0, "report after a kill in SCST");
    assert_eq!(got.1, expected.1, "captions after a kill in SCST");

    // Killed in the first SCST epoch, after the start state (best cross-entropy weights, fresh
    // Adam) replaced the last cross-entropy checkpoint: the resume redoes it to the same result.
    let run = run_and_kill(dir, &args, &move |run: &Path| {
        if history_lines(run) < 2 {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(epoch_s * 0.4));
        true
    });
    let o = caplab(dir, &["resume", &run.to_string_lossy(), "--quiet"]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    let got = outcome(&run);
    assert_eq!(
        got.0, expected.0,
        "report after a kill in the first SCST epoch"
    );
    assert_eq!(
        got.1, expected.1,
        "captions after a kill in the first SCST epoch"
    );

    // The other baseline runs too; with one sample per image it is an error naming the key.
    let o = caplab(
        dir,
        &[
            "run",
            "tiny.toml",
            "--quiet",
            "--set",
            "train.scst.baseline=\"mean_of_others\"",
            "--set",
            "train.scst.epochs=1",
        ],
    );
    assert!(
        o.status.success(),
        "mean_of_others run failed: {}",
        stderr(&o)
    );
    let o = caplab(
        dir,
        &[
            "run",
            "tiny.toml",
            "--dry-run",
            "--set",
            "train.scst.baseline=\"mean_of_others\"",
            "--set",
            "train.scst.samples_per_image=1",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("train.scst.samples_per_image"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn scst_init_from_starts_from_another_runs_best_epoch_and_scores_it_as_the_xe_row() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("xe.toml"),
        &TINY_SPEC.replace("epochs = 3", "epochs = 2"),
    );
    let o = caplab(dir, &["run", "xe.toml", "--quiet"]);
    assert!(o.status.success(), "XE run failed: {}", stderr(&o));
    let source = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    let read_report = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).expect("read"))
            .expect("report.json")
    };
    let source_report = read_report(&source);
    let source_best = source_report["best_epoch"].as_u64().expect("best epoch");

    let scst = |extra: &str| {
        TINY_SPEC
            .replace("name = \"tiny\"", "name = \"tiny-scst\"")
            .replace("epochs = 3", "epochs = 0")
            + &format!(
                "\n[train.scst]\nepochs = 1\nlr = 1e-3\nsamples_per_image = 3\nmax_len = 10\n\
                 init_from = {:?}\n{extra}",
                source.to_string_lossy()
            )
    };
    write(&dir.join("scst.toml"), &scst(""));
    let o = caplab(dir, &["run", "scst.toml", "--quiet"]);
    assert!(o.status.success(), "SCST run failed: {}", stderr(&o));
    let run = run_dirs(&dir.join("runs/tiny-scst")).pop().expect("a run");
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let phases: Vec<String> = history
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("line");
            v["phase"].as_str().expect("phase").to_string()
        })
        .collect();
    assert_eq!(phases, ["scst"]);
    assert_eq!(
        std::fs::read(run.join("vocab.json")).expect("vocab"),
        std::fs::read(source.join("vocab.json")).expect("source vocab"),
        "the source run's vocabulary"
    );
    // The second row is the source run's best epoch, decoded the same way: its scores are the
    // source run's own test scores.
    let report = read_report(&run);
    let test = report["test"].as_array().expect("test rows");
    assert_eq!(
        test[1]["name"].as_str().expect("name"),
        format!("xe: {} epoch {source_best}", source.display())
    );
    assert_eq!(test[1]["metrics"], source_report["test"][0]["metrics"]);

    // Mismatches are errors naming the key, before any run directory is created.
    let before = run_dirs(&dir.join("runs/tiny-scst")).len();
    for (set, key) in [
        ("model.decoder.hidden_dim=64", "model.decoder.hidden_dim"),
        ("train.epochs=2", "train.epochs"),
        ("train.scst.init_from=\"runs/none\"", "train.scst.init_from"),
    ] {
        let o = caplab(dir, &["run", "scst.toml", "--quiet", "--set", set]);
        assert!(!o.status.success(), "{set} was accepted");
        assert!(stderr(&o).contains(key), "{set}: {}", stderr(&o));
    }
    assert_eq!(run_dirs(&dir.join("runs/tiny-scst")).len(), before);
}

/// `experiment.device`, `experiment.precision` and `experiment.devices`: spec errors name the key,
/// and `run`, `eval`, `caption` and `features` all resolve the device the same way (in this
/// CPU-only build, every CUDA choice is a clear error and nothing trains on a wrong device).
#[test]
fn device_precision_and_devices_are_validated_and_every_command_honours_the_device() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("tiny.toml"),
        &TINY_SPEC.replace("epochs = 3", "epochs = 1"),
    );
    let dry = |sets: &[&str]| {
        let mut args = vec!["run", "tiny.toml", "--dry-run"];
        for s in sets {
            args.extend(["--set", s]);
        }
        caplab(dir, &args)
    };
    let o = dry(&["experiment.device=\"cuda:1\""]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("device = \"cuda:1\""));
    let refused: [(&[&str], &str); 5] = [
        (
            &["experiment.device=\"gpu\""],
            "key experiment.device must be \"cpu\", \"cuda\", \"cuda:N\"",
        ),
        (&["experiment.device=\"cuda:x\""], "got \"cuda:x\""),
        (
            &["experiment.precision=\"bf16\""],
            "key experiment.precision = \"bf16\" needs a CUDA device",
        ),
        (
            &["experiment.devices=[0, 1]"],
            "key experiment.devices (data-parallel training) needs experiment.device",
        ),
        (
            &["experiment.device=\"cuda\"", "experiment.devices=[0, 0]"],
            "key experiment.devices must list distinct CUDA ordinals",
        ),
    ];
    for (sets, expected) in refused {
        let o = dry(sets);
        assert!(!o.status.success(), "{sets:?} was accepted");
        assert!(stderr(&o).contains(expected), "{sets:?}: {}", stderr(&o));
    }
    // Resolved when the run starts: no CUDA in this build, several devices not yet wired, and
    // "auto" falling back to the CPU cannot keep bf16.
    let run_fails = |sets: &[&str], expected: &str| {
        let mut args = vec!["run", "tiny.toml", "--quiet"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let o = caplab(dir, &args);
        assert!(!o.status.success(), "{sets:?} ran");
        assert!(stderr(&o).contains(expected), "{sets:?}: {}", stderr(&o));
    };
    run_fails(
        &["experiment.device=\"cuda:1\""],
        "experiment.device = \"cuda:1\" but this caplab binary was built without CUDA",
    );
    run_fails(
        &["experiment.device=\"cuda\"", "experiment.devices=[0, 1]"],
        "data-parallel training is not yet wired",
    );
    run_fails(
        &[
            "experiment.device=\"auto\"",
            "experiment.precision=\"bf16\"",
        ],
        "resolved to the CPU",
    );
    assert!(!dir.join("runs/tiny").exists() || run_dirs(&dir.join("runs/tiny")).is_empty());

    // A CPU run; its report names the device.
    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let run = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    assert_eq!(report_of(&run)["device"], "cpu (burn Flex backend)");
    // `eval` and `caption` resolve the run's own experiment.device: pointed at cuda:1, they
    // refuse in this build instead of silently using the CPU.
    let spec_path = run.join("spec.toml");
    let spec = std::fs::read_to_string(&spec_path).expect("spec.toml");
    assert!(spec.contains("device = \"cpu\""), "{spec}");
    write(
        &spec_path,
        &spec.replace("device = \"cpu\"", "device = \"cuda:1\""),
    );
    let run_arg = run.to_string_lossy().into_owned();
    let image = dir.join("shapes/images/000001.jpg");
    let image_arg = image.to_string_lossy().into_owned();
    for args in [
        vec!["eval", run_arg.as_str(), "--quiet"],
        vec!["caption", run_arg.as_str(), image_arg.as_str(), "--quiet"],
    ] {
        let o = caplab(dir, &args);
        assert!(!o.status.success(), "{args:?} ran");
        assert!(
            stderr(&o).contains(
                "experiment.device = \"cuda:1\" but this caplab binary was built without CUDA"
            ),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    write(&spec_path, &spec);
    let o = caplab(dir, &["caption", &run_arg, &image_arg, "--quiet"]);
    assert!(o.status.success(), "caption failed: {}", stderr(&o));

    // `caplab features --device/--precision`, through the same resolution.
    let feats = |extra: &[&str]| {
        let mut args = vec![
            "features",
            "--encoder",
            "resnet_tiny",
            "--images",
            "shapes/images",
            "--size",
            "32",
            "--out",
            "f.safetensors",
            "--quiet",
        ];
        args.extend(extra);
        caplab(dir, &args)
    };
    let o = feats(&["--device", "cuda:2"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--device = \"cuda:2\" but this caplab binary was built without CUDA"),
        "{}",
        stderr(&o)
    );
    let o = feats(&["--device", "cpu", "--precision", "bf16"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--precision = \"bf16\" needs a CUDA device"),
        "{}",
        stderr(&o)
    );
    let o = feats(&["--device", "gpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("\"cuda:N\""), "{}", stderr(&o));
    let o = feats(&["--device", "auto"]);
    assert!(o.status.success(), "features failed: {}", stderr(&o));
    assert!(dir.join("f.safetensors").is_file());
}

/// A checkpoint record damaged after it was written (a copy cut short, a full quota, bit rot):
/// `caplab resume` falls back to the newest epoch whose records verify and reaches the
/// uninterrupted result; `caplab eval` names the bad file and the epochs that verify; records
/// written without checksums still load.
#[test]
fn a_damaged_checkpoint_falls_back_to_a_verified_epoch_and_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(&dir.join("tiny.toml"), TINY_SPEC);
    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let whole = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    let expected = outcome(&whole);
    let ckpt = whole.join("checkpoint");
    assert!(
        ckpt.join("model-3.mpk.sum").is_file(),
        "each record has its checksum"
    );
    let keep = std::fs::read(ckpt.join("model-3.mpk")).expect("model-3");

    // eval of the damaged last epoch: an error naming the file and the good epochs, no panic.
    std::fs::write(ckpt.join("model-3.mpk"), &keep[..keep.len() / 2]).expect("truncate");
    let o = caplab(
        dir,
        &[
            "eval",
            &whole.to_string_lossy(),
            "--checkpoint",
            "3",
            "--quiet",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "an error, not a panic: {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("model-3.mpk") && err.contains("truncated"),
        "{err}"
    );
    let mut good: Vec<usize> = std::fs::read_dir(&ckpt)
        .expect("checkpoint dir")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            name.strip_prefix("model-")?
                .strip_suffix(".mpk")?
                .parse()
                .ok()
        })
        .filter(|e| *e != 3)
        .collect();
    good.sort();
    let good: Vec<String> = good.iter().map(|e| e.to_string()).collect();
    assert!(
        err.contains(&format!("verify: {{{}}}", good.join(", "))),
        "{err}"
    );
    assert!(!whole.join("evals").exists(), "nothing created");

    // resume of a run whose last checkpoint is damaged: epoch 3 is trained again from epoch 2.
    std::fs::remove_file(whole.join("report.json")).expect("unfinish the run");
    let o = caplab(dir, &["resume", &whole.to_string_lossy()]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    assert!(
        stderr(&o).contains("epoch 3 does not verify") && stderr(&o).contains("model-3.mpk"),
        "the warning names the bad file: {}",
        stderr(&o)
    );
    let got = outcome(&whole);
    assert_eq!(got.0, expected.0, "report after the fallback");
    assert_eq!(got.1, expected.1, "captions after the fallback");
    assert_eq!(history_lines(&whole), 3);
    assert_eq!(
        std::fs::read(ckpt.join("model-3.mpk")).expect("model-3"),
        keep,
        "epoch 3 retrained to the same weights"
    );

    // Checkpoints written before checksums existed (no .sum files) still load.
    for e in std::fs::read_dir(&ckpt).expect("checkpoint dir") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "sum") {
            std::fs::remove_file(path).expect("remove sum");
        }
    }
    let o = caplab(dir, &["eval", &whole.to_string_lossy(), "--quiet"]);
    assert!(o.status.success(), "eval without checksums: {}", stderr(&o));
}

#[test]
fn score_on_partial_results_scores_the_covered_images_as_pycocoevalcap_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // 24 reference images with three captions each; results for the even half.
    let (colours, shapes, places) = (
        ["red", "blue", "green", "yellow"],
        ["circle", "square", "star", "triangle", "cross", "ring"],
        [
            "on the left",
            "in the middle",
            "near a corner",
            "on a white background",
        ],
    );
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    let mut half = Vec::new();
    for i in 0..24usize {
        let id = 1000 + i;
        let (c, s) = (colours[i % 4], shapes[i % 6]);
        images.push(serde_json::json!({ "id": id, "file_name": format!("{id}.jpg") }));
        for (k, cap) in [
            format!("A {c} {s} {}.", places[i % 4]),
            format!("a small {c} {s} {}", places[(i + 1) % 4]),
            format!("There is a {s}, coloured {c}, {}.", places[(i / 4) % 4]),
        ]
        .into_iter()
        .enumerate()
        {
            annotations.push(serde_json::json!({
                "image_id": id, "id": 3 * i + k + 1, "caption": cap
            }));
        }
        if i % 2 == 0 {
            let caption = match i % 3 {
                0 => format!("a {c} {s} {}", places[i % 4]),
                1 => format!("a {s} that is {c}"),
                _ => format!("a {} shape {}", colours[(i + 1) % 4], places[(i + 2) % 4]),
            };
            half.push(serde_json::json!({ "image_id": id, "caption": caption }));
        }
    }
    let refs = serde_json::json!({ "images": images, "annotations": annotations });
    write(&dir.join("refs.json"), &refs.to_string());
    write(
        &dir.join("half.json"),
        &serde_json::Value::from(half.clone()).to_string(),
    );
    let score = |results: &str, extra: &[&str]| {
        let mut args = vec!["score", "--refs", "refs.json", "--results", results];
        args.extend_from_slice(extra);
        caplab(dir, &args)
    };

    // Scored on the 12 images it covers, with a warning that counts the others.
    let o = score("half.json", &["--out", "scores.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("12 of 24 reference images have no result in half.json")
            && e.contains("scoring the 12 it covers")
            && e.contains("--require-all"),
        "{e}"
    );
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scores.json")).expect("read"))
            .expect("json");
    assert_eq!(scores["images_scored"], 12, "{scores}");
    assert_eq!(scores["refs_without_result"], 12, "{scores}");
    let per_image = scores["per_image"].as_object().expect("per_image");
    assert_eq!(per_image.len(), 12);
    assert!(per_image.contains_key("1000") && !per_image.contains_key("1001"));

    // --require-all makes the missing images an error that names the file and the first id.
    let o = score("half.json", &["--require-all"]);
    assert!(
        !o.status.success(),
        "--require-all accepted partial results"
    );
    let e = stderr(&o);
    assert!(
        e.contains("half.json")
            && e.contains("no result for image_id 1001")
            && e.contains("12 image(s) missing"),
        "{e}"
    );

    // A result for an image without references is still an error naming the file and the id.
    write(
        &dir.join("stray.json"),
        r#"[{"image_id": 1000, "caption": "a red circle"}, {"image_id": 4242, "caption": "x"}]"#,
    );
    let o = score("stray.json", &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("stray.json") && e.contains("4242"), "{e}");

    // --compare: both files on the same half is fine; another image set is an error naming both.
    let weak: Vec<serde_json::Value> = half
        .iter()
        .map(|r| serde_json::json!({ "image_id": r["image_id"], "caption": "a shape" }))
        .collect();
    write(
        &dir.join("weak.json"),
        &serde_json::Value::from(weak.clone()).to_string(),
    );
    let o = score(
        "half.json",
        &["--compare", "weak.json", "--bootstrap-samples", "50"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    write(
        &dir.join("fewer.json"),
        &serde_json::Value::from(weak[1..].to_vec()).to_string(),
    );
    let o = score(
        "half.json",
        &["--compare", "fewer.json", "--bootstrap-samples", "50"],
    );
    assert!(!o.status.success(), "--compare accepted another image set");
    let e = stderr(&o);
    assert!(
        e.contains("half.json") && e.contains("fewer.json") && e.contains("image_id 1000"),
        "{e}"
    );

    // pycocoevalcap's own numbers on the same files: COCOEvalCap's flow over the results' ids.
    if let Ok(python) = std::env::var("CAPLAB_TB_PYTHON") {
        run_script(
            &python,
            "metrics/check_partial_score.py",
            dir,
            "pycocoevalcap disagrees with caplab score on partial results",
        );
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CAPLAB_TB_PYTHON so pycocoevalcap checks partial-results scoring"
        );
    }
}

/// Issue 26: images over the pixel budget (`--max-image-pixels`, `preprocess.max_image_pixels`)
/// are refused from their header, naming the file and its size: `caplab caption` skips them and
/// exits non-zero, `caplab data check` lists them, `caplab run` fails before its run directory.
#[test]
fn images_over_the_pixel_budget_are_refused_by_caption_data_check_and_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        &dir.join("tiny.toml"),
        &TINY_SPEC.replace("epochs = 3", "epochs = 1"),
    );
    let o = caplab(dir, &["run", "tiny.toml", "--quiet"]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let run = run_dirs(&dir.join("runs/tiny")).pop().expect("a run");
    // 200 × 150 of one colour (30 000 pixels) beside a 64 × 64 photo (4096 pixels).
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    std::fs::copy(dir.join("shapes/images/000001.jpg"), photos.join("a.jpg")).expect("copy");
    let big = image::RgbImage::from_pixel(200, 150, image::Rgb([200, 30, 30]));
    big.save(photos.join("big.png")).expect("save png");
    let run_arg = run.to_string_lossy().into_owned();
    let caption = |extra: &[&str]| {
        let mut args = vec!["caption", run_arg.as_str(), "photos", "--json", "--quiet"];
        args.extend_from_slice(extra);
        caplab(dir, &args)
    };
    let names = |o: &Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["image_id"].as_str().expect("image_id").to_string()
            })
            .collect()
    };
    let o = caption(&["--max-image-pixels", "10000"]);
    assert!(!o.status.success(), "a refused file sets the exit status");
    let err = stderr(&o);
    assert!(
        err.contains("big.png: 200 × 150 = 30000 pixels, over the limit of 10000 pixels"),
        "{err}"
    );
    assert_eq!(names(&o), vec!["photos/a.jpg"], "the others are captioned");
    // Under the default budget (100 megapixels) both are captioned.
    let o = caption(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(names(&o), vec!["photos/a.jpg", "photos/big.png"]);
    let o = caption(&["--max-image-pixels", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--max-image-pixels"), "{}", stderr(&o));

    // A dataset image over the spec's budget: `data check` lists it, `run` refuses the dataset.
    big.save_with_format(
        dir.join("shapes/images/000003.jpg"),
        image::ImageFormat::Png,
    )
    .expect("save png");
    let budget = "preprocess.max_image_pixels=10000";
    let o = caplab(dir, &["data", "check", "tiny.toml", "--set", budget]);
    assert!(!o.status.success(), "an oversized image is an error");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("000003.jpg: 200 × 150 = 30000 pixels, over the limit of 10000 pixels"),
        "{out}"
    );
    assert!(!out.contains("000001.jpg"), "{out}");
    let o = caplab(dir, &["data", "check", "tiny.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = run_dirs(&dir.join("runs/tiny"));
    let o = caplab(dir, &["run", "tiny.toml", "--quiet", "--set", budget]);
    assert!(!o.status.success(), "the run refuses the dataset");
    assert!(
        stderr(&o).contains("000003.jpg: 200 × 150 = 30000 pixels"),
        "{}",
        stderr(&o)
    );
    assert_eq!(run_dirs(&dir.join("runs/tiny")), before, "no run directory");
    let o = caplab(
        dir,
        &[
            "data",
            "check",
            "tiny.toml",
            "--set",
            "preprocess.max_image_pixels=0",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("preprocess.max_image_pixels"),
        "{}",
        stderr(&o)
    );
}
