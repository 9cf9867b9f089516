//! Parity with the real pycocoevalcap on golden fixtures (see scripts/metrics/make_fixtures.py).

use caplab_metrics::{
    evaluate, evaluate_stats, ptb_tokenize, stats_of_tokenized, tokenize_set, EvalOptions,
    MeteorMode,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn refs_cands(v: &Value) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, String>) {
    let refs = serde_json::from_value(v["refs"].clone()).expect("refs");
    let cands = serde_json::from_value(v["cands"].clone()).expect("cands");
    (refs, cands)
}

#[test]
fn tokenizer_matches_ptbtokenizer_case_by_case() {
    let cases = fixture("tokenizer.json");
    let mut bad = Vec::new();
    for c in cases.as_array().expect("array") {
        let raw = c["raw"].as_str().expect("raw");
        let want = c["tokens"].as_str().expect("tokens");
        let got = ptb_tokenize(raw).join(" ");
        if got != want {
            bad.push(format!("{raw:?}: got {got:?}, pycocoevalcap {want:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Thousands of raw, messy captions (scripts/metrics/make_tokenizer_fixture.py) tokenised by the
/// real jar in ONE run joined by newlines, as pycocoevalcap runs it: identical on every line.
#[test]
fn tokenizer_matches_ptbtokenizer_on_every_generated_caption() {
    use std::io::Read;
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer_lines.json.gz");
    let f = std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let lines: Vec<String> = serde_json::from_value(v["lines"].clone()).expect("lines");
    let want: Vec<String> = serde_json::from_value(v["tokens"].clone()).expect("tokens");
    assert_eq!(lines.len(), want.len());
    assert!(lines.len() > 5000, "{} captions", lines.len());
    let got = caplab_metrics::ptb_tokenize_lines(&lines);
    let bad: Vec<String> = (0..lines.len())
        .filter(|&i| got[i].join(" ") != want[i])
        .map(|i| {
            format!(
                "{:?} (next {:?}): got {:?}, jar {:?}",
                lines[i],
                lines.get(i + 1).map(|l| l.chars().next()),
                got[i].join(" "),
                want[i]
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} captions differ:\n{}",
        bad.len(),
        lines.len(),
        bad.join("\n")
    );
}

fn check_set(name: &str) {
    let v = fixture(name);
    let (refs, cands) = refs_cands(&v);
    // Tokenisation of the whole set (with the line-joining context pycocoevalcap has).
    let tok = tokenize_set(&refs, &cands).expect("tokenize");
    let mut bad = Vec::new();
    for (i, id) in tok.ids.iter().enumerate() {
        let want_c = v["tok_cands"][id].as_str().expect("tok cand");
        if tok.cands[i] != want_c {
            bad.push(format!("cand {id}: {:?} vs {want_c:?}", tok.cands[i]));
        }
        for (j, r) in tok.refs[i].iter().enumerate() {
            let want = v["tok_refs"][id][j].as_str().expect("tok ref");
            if r != want {
                bad.push(format!("ref {id}/{j}: {r:?} vs {want:?}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: tokenisation differs:\n{}",
        bad.join("\n")
    );
    let ev = evaluate(&refs, &cands, &EvalOptions::default()).expect("evaluate");
    // Scoring the joined token strings gives the same numbers as scoring the token ids.
    let from_text = stats_of_tokenized(&tok, &EvalOptions::default())
        .expect("stats")
        .evaluation();
    for (id, scores) in &ev.per_image {
        for (metric, v) in scores {
            let w = from_text.per_image[id][metric];
            assert!((v - w).abs() < 1e-12, "{name} {id} {metric}: {v} vs {w}");
        }
    }
    let mut worst = 0f64;
    for (metric, want) in v["corpus"].as_object().expect("corpus") {
        if metric == "METEOR" {
            continue;
        }
        let got = ev.corpus[metric];
        let want = want.as_f64().expect("f64");
        assert!(
            (got - want).abs() < 1e-6,
            "{name} corpus {metric}: {got} vs {want}"
        );
        worst = worst.max((got - want).abs());
    }
    for (id, scores) in v["per_image"].as_object().expect("per image") {
        for (metric, want) in scores.as_object().expect("scores") {
            if metric == "METEOR" {
                continue;
            }
            let got = ev.per_image[id][metric];
            let want = want.as_f64().expect("f64");
            assert!(
                (got - want).abs() < 1e-6,
                "{name} image {id} {metric}: {got} vs {want}"
            );
            worst = worst.max((got - want).abs());
        }
    }
    eprintln!("{name}: max |caplab - pycocoevalcap| = {worst:e}");
}

#[test]
fn realistic_set_matches_pycocoevalcap() {
    check_set("realistic.json");
}

#[test]
fn edge_set_matches_pycocoevalcap() {
    check_set("edge.json");
}

#[test]
fn unknown_and_missing_ids_are_errors() {
    let v = fixture("edge.json");
    let (refs, mut cands) = refs_cands(&v);
    cands.insert("nope".into(), "a dog".into());
    let e = evaluate(&refs, &cands, &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let (refs, mut cands) = refs_cands(&v);
    let first = cands.keys().next().cloned().expect("one");
    cands.remove(&first);
    let e = evaluate(&refs, &cands, &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains(&first), "{e}");
}

/// `CAPLAB_METEOR_DIR` (the jar's folder), or `None` after a message that `what` is skipped;
/// a panic under CI=true, which must export it.
fn meteor_dir(what: &str) -> Option<std::ffi::OsString> {
    let dir = std::env::var_os("CAPLAB_METEOR_DIR");
    if dir.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CAPLAB_METEOR_DIR is not set: CI must pip-install pycocoevalcap and export it");
        }
        eprintln!("skipping {what}: CAPLAB_METEOR_DIR is not set");
    }
    dir
}

/// Full METEOR 1.5 parity with the jar (corpus and per image). CI exports
/// CAPLAB_METEOR_DIR=<site-packages>/pycocoevalcap/meteor; without it the test fails under
/// CI=true and skips with a message locally. The resources load once for the whole process.
#[test]
fn meteor_matches_the_jar() {
    let Some(dir) = meteor_dir("METEOR parity") else {
        return;
    };
    let dir = PathBuf::from(dir);
    assert!(
        matches!(
            MeteorMode::best_available(Some(dir.clone())),
            MeteorMode::Full { .. }
        ),
        "best_available must pick full METEOR when the jar and paraphrase table are present"
    );
    let t = std::time::Instant::now();
    let opts = EvalOptions {
        meteor: MeteorMode::Full { dir },
    };
    for name in ["realistic.json", "edge.json"] {
        let v = fixture(name);
        let (refs, cands) = refs_cands(&v);
        let ev = evaluate(&refs, &cands, &opts).expect("METEOR");
        let mut worst = (0.0f64, String::new());
        for (id, scores) in v["per_image"].as_object().expect("per_image") {
            let want = scores["METEOR"].as_f64().expect("fixture has METEOR");
            let got = ev.per_image[id]["METEOR"];
            let d = (got - want).abs();
            if d > worst.0 {
                worst = (d, format!("{id}: {got} vs jar {want}"));
            }
        }
        eprintln!("{name}: worst per-image METEOR difference {worst:?}");
        assert!(worst.0 < 1e-15, "{name}: {worst:?}");
        let want = v["corpus"]["METEOR"].as_f64().expect("fixture has METEOR");
        eprintln!("{name}: corpus {} vs jar {want}", ev.corpus["METEOR"]);
        assert!(
            (ev.corpus["METEOR"] - want).abs() < 1e-15,
            "{name}: {} vs {want}",
            ev.corpus["METEOR"]
        );
    }
    eprintln!(
        "full METEOR parity (including loading) took {:?}",
        t.elapsed()
    );
}

/// Segments of repeated words, where the beam search has hundreds of candidates per position:
/// their statistics equal the jar's `SCORE` lines (`-m "exact stem" -l en -norm`, Meteor 1.5
/// as pycocoevalcap ships it).
#[test]
fn meteor_exact_stem_on_repeated_words_equals_the_jar_statistics() {
    if meteor_dir("METEOR(exact+stem) on repeated words").is_none() {
        return;
    }
    let meteor = caplab_metrics::meteor::Meteor::exact_stem().expect("METEOR(exact+stem)");
    let cases = [
        (
            "a ".repeat(200),
            vec!["a ".repeat(150)],
            "200 150 200 150 0 0 150 150 0 0 0 0 0 0 0 0 0 0 0 0 1 150 150",
        ),
        (
            "the dog runs ".repeat(40),
            vec!["dog the runs running ".repeat(30), "dogs dog ".repeat(50)],
            "120 120 40 30 50 50 30 30 20 20 0 0 0 0 0 0 0 0 0 0 100 100 100",
        ),
        (
            "x y ".repeat(120) + "x",
            vec!["y x x ".repeat(60), "x ".repeat(90)],
            "241 180 0 0 180 180 0 0 0 0 0 0 0 0 0 0 0 0 0 0 61 180 180",
        ),
    ];
    for (cand, refs, jar) in cases {
        let refs: Vec<String> = refs.iter().map(|r| r.trim().to_string()).collect();
        let got = meteor.segment_stats(cand.trim(), &refs);
        let want: Vec<f64> = jar.split(' ').map(|x| x.parse().expect("number")).collect();
        assert_eq!(got, want, "{cand:?}");
    }
}

/// METEOR(exact+stem) parity with the jar run as `-m "exact stem"` (fixture made by
/// scripts/metrics/make_meteor_fixture.py). Needs CAPLAB_METEOR_DIR for the jar's function words.
#[test]
fn meteor_exact_stem_matches_the_jar() {
    if meteor_dir("METEOR(exact+stem) parity").is_none() {
        return;
    }
    let want_all = fixture("meteor_exact_stem.json");
    for name in ["realistic.json", "edge.json"] {
        let v = fixture(name);
        let (refs, cands) = refs_cands(&v);
        let opts = EvalOptions {
            meteor: MeteorMode::ExactStem { dir: None },
        };
        let ev = evaluate(&refs, &cands, &opts).expect("METEOR(exact+stem)");
        let key = caplab_metrics::METEOR_EXACT_STEM;
        let want = &want_all[name];
        let mut worst = (0.0f64, String::new());
        for (id, w) in want["per_image"].as_object().expect("per_image") {
            let got = ev.per_image[id][key];
            let d = (got - w.as_f64().expect("number")).abs();
            if d > worst.0 {
                worst = (d, format!("{id}: {got} vs {w}"));
            }
        }
        eprintln!("{name}: worst per-image difference {worst:?}");
        assert!(worst.0 < 1e-15, "{name}: {worst:?}");
        let want_c = want["corpus"].as_f64().expect("corpus");
        eprintln!("{name}: corpus {} vs jar {want_c}", ev.corpus[key]);
        assert!(
            (ev.corpus[key] - want_c).abs() < 1e-15,
            "{name}: {} vs {want_c}",
            ev.corpus[key]
        );
    }
}

#[test]
fn signature_names_tokenizer_meteor_cider_bleu_and_version() {
    let sig = caplab_metrics::Signature::for_options(&EvalOptions::default()).expect("signature");
    assert_eq!(
        sig.to_string(),
        format!(
            "tok:ptb-3.4.1|meteor:off|cider:D,sigma=6,df=corpus|bleu:closest|caplab-metrics:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let Some(dir) = std::env::var_os("CAPLAB_METEOR_DIR") else {
        eprintln!("skipping the full METEOR signature: CAPLAB_METEOR_DIR is not set");
        return;
    };
    let opts = EvalOptions {
        meteor: MeteorMode::Full {
            dir: PathBuf::from(dir),
        },
    };
    let sig = caplab_metrics::Signature::for_options(&opts).expect("signature");
    let hash = sig.meteor.strip_prefix("full-1.5+").expect("full METEOR");
    assert!(
        hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{sig}"
    );
    assert!(sig
        .to_string()
        .contains(&format!("|meteor:full-1.5+{hash}|")));
}

/// Means use numpy's pairwise summation (values from numpy 2.4: `np.add.reduce`), where a
/// left-to-right sum differs in the last bits.
#[test]
fn numpy_sum_equals_numpy_add_reduce() {
    let a: Vec<f64> = (0..1000).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    assert_eq!(caplab_metrics::numpy_sum(&a), 7.485470860550345);
    assert_ne!(a.iter().sum::<f64>(), 7.485470860550345);
    let b: Vec<f64> = (0..37).map(|i| 0.1 * i as f64).collect();
    assert_eq!(caplab_metrics::numpy_sum(&b), 66.6);
    assert_eq!(caplab_metrics::numpy_sum(&[]), 0.0);
}

/// Scoring runs in parallel across images; every statistic and score must be bit-identical
/// whatever the number of threads (full METEOR when CAPLAB_METEOR_DIR is set, else exact+stem).
#[test]
fn scores_do_not_depend_on_the_thread_count() {
    let meteor = match std::env::var_os("CAPLAB_METEOR_DIR") {
        Some(dir) => MeteorMode::Full {
            dir: PathBuf::from(dir),
        },
        None => MeteorMode::ExactStem { dir: None },
    };
    let opts = EvalOptions { meteor };
    for name in ["realistic.json", "edge.json"] {
        let v = fixture(name);
        let (refs, cands) = refs_cands(&v);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let stats = pool
                .install(|| evaluate_stats(&refs, &cands, &opts))
                .expect("scores");
            let bits: Vec<(String, Vec<Vec<u64>>)> = stats
                .metrics
                .iter()
                .map(|m| {
                    let per_image = m
                        .per_image
                        .iter()
                        .map(|s| s.iter().map(|x| x.to_bits()).collect())
                        .collect();
                    (m.name.clone(), per_image)
                })
                .collect();
            let corpus: Vec<(String, u64)> = stats
                .evaluation()
                .corpus
                .into_iter()
                .map(|(k, x)| (k, x.to_bits()))
                .collect();
            (bits, corpus)
        };
        let one = run(1);
        assert!(one.0.iter().any(|(n, _)| n.starts_with("METEOR")), "{name}");
        for threads in [2, 3, 8] {
            assert!(
                run(threads) == one,
                "{name}: {threads} threads differ from 1"
            );
        }
    }
}
