//! Times caplab-metrics on a COCO annotation file and a COCO results file.
//!
//! `cargo run --release -p caplab-metrics --example score_bench -- REFS RESULTS [METEOR_DIR]`
//! prints one JSON line: seconds for loading, tokenisation, scoring and the whole evaluation;
//! with METEOR_DIR (the directory of `meteor-1.5.jar`) also full METEOR 1.5, timed separately
//! (resource loading and scoring).

use caplab_metrics::{
    coco, meteor::Meteor, meteor_segment_stats, stats_of_ids, tokenize_ids, Aggregate, EvalOptions,
    MetricStats,
};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 && args.len() != 4 {
        return Err("usage: score_bench REFS RESULTS [METEOR_DIR]".into());
    }
    let t0 = Instant::now();
    let refs = coco::load_refs(Path::new(&args[1]))?;
    let res = coco::load_results(Path::new(&args[2]))?;
    let t_load = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let tok = tokenize_ids(&refs, &res)?;
    let t_tok = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let stats = stats_of_ids(&tok, &EvalOptions::default())?;
    let t_stats = t2.elapsed().as_secs_f64();
    let ev = stats.evaluation();
    let t_score = t2.elapsed().as_secs_f64();
    let meteor = match args.get(3) {
        Some(dir) => {
            let t3 = Instant::now();
            let m = Meteor::full(Path::new(dir))?;
            let t_load = t3.elapsed().as_secs_f64();
            let per_image = meteor_segment_stats(&m, &tok);
            let stats = MetricStats {
                name: m.metric_name().to_string(),
                aggregate: Aggregate::Meteor,
                per_image,
            };
            serde_json::json!({
                "load_s": t_load,
                "score_s": t3.elapsed().as_secs_f64() - t_load,
                "all_s": t3.elapsed().as_secs_f64(),
                "corpus": stats.corpus_value(),
            })
        }
        None => serde_json::Value::Null,
    };
    println!(
        "{}",
        serde_json::json!({
            "images": ev.per_image.len(),
            "load_s": t_load,
            "tokenize_s": t_tok,
            "score_s": t_score,
            "stats_s": t_stats,
            "per_image_s": t_score - t_stats,
            "evaluate_s": t_tok + t_score,
            "corpus": ev.corpus,
            "meteor": meteor,
        })
    );
    Ok(())
}
