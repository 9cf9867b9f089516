//! Times caplab-metrics on a COCO annotation file and a COCO results file.
//!
//! `cargo run --release -p caplab-metrics --example score_bench -- REFS RESULTS`
//! prints one JSON line: seconds for loading, tokenisation, scoring and the whole evaluation.

use caplab_metrics::{coco, stats_of_tokenized, tokenize_set, EvalOptions};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err("usage: score_bench REFS RESULTS".into());
    }
    let t0 = Instant::now();
    let refs = coco::load_refs(Path::new(&args[1]))?;
    let res = coco::load_results(Path::new(&args[2]))?;
    let t_load = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let tok = tokenize_set(&refs, &res)?;
    let t_tok = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let stats = stats_of_tokenized(&tok, &EvalOptions::default())?;
    let ev = stats.evaluation();
    let t_score = t2.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "images": ev.per_image.len(),
            "load_s": t_load,
            "tokenize_s": t_tok,
            "score_s": t_score,
            "evaluate_s": t_tok + t_score,
            "corpus": ev.corpus,
        })
    );
    Ok(())
}
