//! `caplab score`: pycocoevalcap-exact caption metrics of a results file against references.

use anyhow::{Context, Result};
use caplab_metrics::{
    bootstrap::{paired_bootstrap, BootstrapOptions},
    coco, diagnostics, evaluate_stats, EvalOptions, MeteorMode,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fsutil::write_atomic;

/// What `caplab score` scores.
#[derive(Clone, Debug)]
pub struct ScoreRequest {
    /// References: a COCO captions annotation JSON or a caplab/Flickr8k captions.txt (image,caption).
    pub refs: PathBuf,
    /// Results: a COCO results JSON ([{"image_id", "caption"}]).
    pub results: PathBuf,
    /// A second results file on the same images: paired bootstrap of the difference.
    pub compare: Option<PathBuf>,
    /// Fail when some reference images have no result, instead of scoring the images the
    /// results file covers (pycocoevalcap's behaviour).
    pub require_all: bool,
    /// Write corpus and per-image scores (and the comparison) as JSON to this file.
    pub out: Option<PathBuf>,
    /// METEOR 1.5 distribution directory (meteor-1.5.jar, data/paraphrase-en.gz); defaults to $CAPLAB_METEOR_DIR.
    pub meteor_dir: Option<PathBuf>,
    /// Bootstrap resamples for --compare.
    pub bootstrap_samples: usize,
}

/// Loads references keyed by image id: a COCO annotation JSON (by caplab-metrics), or a
/// `captions.txt` read by the same reader as `caplab run`'s datasets
/// ([`caplab_data::flickr8k::parse_caption_rows`]), so both accept and reject the same files.
pub fn load_refs(path: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let text = caplab_data::fsutil::read_text(path)?;
    let head = text.trim_start();
    if head.starts_with('{') || head.starts_with('[') {
        return Ok(coco::parse_coco_refs(path, &text)?);
    }
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in caplab_data::flickr8k::parse_caption_rows(path, &text)? {
        refs.entry(row.image).or_default().push(row.caption);
    }
    Ok(refs)
}

/// Runs `caplab score`.
pub fn run(args: &ScoreRequest) -> Result<()> {
    let all_refs = load_refs(&args.refs)?;
    let results = coco::load_results(&args.results)?;
    let coverage = covered(
        &all_refs,
        &args.refs,
        &results,
        &args.results,
        args.require_all,
    )?;
    // pycocoevalcap scores the results' images only: CIDEr-D's document frequencies come from
    // their references alone.
    let refs = coco::refs_of_results(&all_refs, &results);
    // The most complete METEOR available, labelled by what it is: `METEOR` (full 1.5) or
    // `METEOR(exact+stem)` — never a silent substitute.
    let opts = EvalOptions {
        meteor: MeteorMode::best_available(args.meteor_dir.clone()),
    };
    let stats = evaluate_stats(&refs, &results, &opts)
        .with_context(|| format!("scoring {}", args.results.display()))?;
    let eval = stats.evaluation();
    println!("{:<22}{:>10}", "metric", args.results.display());
    for (k, v) in &eval.corpus {
        println!("{k:<22}{v:>10.4}");
    }
    if !eval.corpus.keys().any(|k| k.starts_with("METEOR")) {
        println!("(METEOR not computed: pass --meteor-dir or set CAPLAB_METEOR_DIR)");
    }
    let signature = caplab_metrics::Signature::for_options(&opts)?;
    println!("signature {signature}");
    let train: Vec<&str> = Vec::new();
    let diag = diagnostics::diagnose(&results, train.iter().copied());
    println!(
        "vocab {}  avg length {:.2}  unique {:.1}%  repetition {:.3}  distinct-1/2 {:.3}/{:.3}",
        diag.vocab_size,
        diag.avg_length,
        diag.unique_pct,
        diag.repetition_rate,
        diag.distinct[0],
        diag.distinct[1]
    );
    let mut comparison = serde_json::Value::Null;
    if let Some(other) = &args.compare {
        let other_res = coco::load_results(other)?;
        covered(&all_refs, &args.refs, &other_res, other, args.require_all)?;
        same_images(&results, &args.results, &other_res, other)?;
        let other_stats = evaluate_stats(&refs, &other_res, &opts)
            .with_context(|| format!("scoring {}", other.display()))?;
        let bopts = BootstrapOptions {
            samples: args.bootstrap_samples,
            ..Default::default()
        };
        let cmp = paired_bootstrap(&stats, &other_stats, &bopts)?;
        println!(
            "\n{:<22}{:>10}{:>10}{:>10}{:>22}{:>9}",
            "metric", "A", "B", "B-A", "95% CI of B-A", "p"
        );
        for (k, c) in &cmp {
            println!(
                "{k:<22}{:>10.4}{:>10.4}{:>10.4}   [{:>8.4}, {:>8.4}]{:>9.4}",
                c.a.estimate, c.b.estimate, c.diff.estimate, c.diff.lower, c.diff.upper, c.p_value
            );
        }
        comparison = serde_json::to_value(&cmp)?;
    }
    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "refs": args.refs,
            "results": args.results,
            "corpus": eval.corpus,
            "signature": signature.to_string(),
            "per_image": eval.per_image,
            "images_scored": coverage.scored,
            "refs_without_result": coverage.missing.len(),
            "diagnostics": diag,
            "compare": args.compare,
            "comparison": comparison,
        });
        write_atomic(out, &serde_json::to_vec_pretty(&json)?)?;
        tracing::info!("wrote {}", out.display());
    }
    Ok(())
}

/// The coverage of a results file; with `require_all` a reference image without a result is
/// an error, otherwise a warning that says how many images are scored.
fn covered(
    refs: &BTreeMap<String, Vec<String>>,
    refs_path: &Path,
    results: &BTreeMap<String, String>,
    results_path: &Path,
    require_all: bool,
) -> Result<coco::Coverage> {
    if require_all {
        coco::check_coverage(refs, refs_path, results, results_path)?;
    }
    let cov = coco::coverage(refs, refs_path, results, results_path)?;
    if let Some(first) = cov.missing.first() {
        tracing::warn!(
            "{} of {} reference images have no result in {} (first: image_id {first}); scoring \
             the {} it covers, as pycocoevalcap does (--require-all makes this an error)",
            cov.missing.len(),
            cov.refs(),
            results_path.display(),
            cov.scored
        );
    }
    Ok(cov)
}

/// The paired bootstrap needs both results files on the same images.
fn same_images(
    a: &BTreeMap<String, String>,
    a_path: &Path,
    b: &BTreeMap<String, String>,
    b_path: &Path,
) -> Result<()> {
    let only = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.keys().filter(|id| !y.contains_key(*id)).count()
    };
    let first = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.keys().find(|id| !y.contains_key(*id)).cloned()
    };
    let (in_a, in_b) = (only(a, b), only(b, a));
    if in_a + in_b > 0 {
        let example = match (first(a, b), first(b, a)) {
            (Some(id), _) => format!(
                "image_id {id} is in {} but not in {}",
                a_path.display(),
                b_path.display()
            ),
            (None, Some(id)) => format!(
                "image_id {id} is in {} but not in {}",
                b_path.display(),
                a_path.display()
            ),
            (None, None) => unreachable!("a difference was counted"),
        };
        anyhow::bail!(
            "--compare needs {} and {} on the same images: {example} ({in_a} image(s) only in \
             the first, {in_b} only in the second)",
            a_path.display(),
            b_path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_csv_uses_the_dataset_reader_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("captions.txt");
        std::fs::write(&p, "image,caption\na.jpg,\"open quote\nb.jpg,fine\n").unwrap();
        let err = load_refs(&p).unwrap_err().to_string();
        assert!(
            err.contains("captions.txt: line 2: unterminated quote"),
            "{err}"
        );
        // Lenient like `caplab run`: an unquoted comma in the trailing caption is kept.
        std::fs::write(&p, "image,caption\na.jpg,a dog, a cat\na.jpg,two\n").unwrap();
        let refs = load_refs(&p).unwrap();
        assert_eq!(refs["a.jpg"], ["a dog, a cat", "two"]);
    }
}
