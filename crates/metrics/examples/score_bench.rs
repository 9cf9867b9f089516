//! Times caplab-metrics on a COCO annotation file and a COCO results file, as one process.
//!
//! `cargo run --release -p caplab-metrics --example score_bench -- REFS RESULTS [METEOR_DIR]`
//! prints one JSON line: seconds of each phase (reading the files, tokenisation, BLEU, ROUGE-L
//! and CIDEr, and with METEOR_DIR, the directory of `meteor-1.5.jar`, full METEOR 1.5's resource
//! loading and scoring), the process total from its start, whether METEOR's resource tables
//! were built (cold: no cache file yet) or memory-mapped from the cache, the number of threads
//! scoring runs on (rayon's pool: `RAYON_NUM_THREADS`, else one per CPU), the corpus scores and
//! the signature. Writing that line is the process's output.

use caplab_metrics::{
    coco, meteor::Meteor, meteor_segment_stats, stats_of_ids, tokenize_ids, Aggregate, EvalOptions,
    MetricStats, Signature,
};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 && args.len() != 4 {
        return Err("usage: score_bench REFS RESULTS [METEOR_DIR]".into());
    }
    let refs = coco::load_refs(Path::new(&args[1]))?;
    let res = coco::load_results(Path::new(&args[2]))?;
    let t_load = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let tok = tokenize_ids(&refs, &res)?;
    let t_tok = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let stats = stats_of_ids(&tok, &EvalOptions::default())?;
    let mut ev = stats.evaluation();
    let t_score = t2.elapsed().as_secs_f64();
    let mut meteor_load = None;
    let mut meteor_score = None;
    let mut cache = serde_json::Value::Null;
    let mut signature = Signature::new(None);
    if let Some(dir) = args.get(3) {
        let t3 = Instant::now();
        let m = Meteor::full(Path::new(dir))?;
        meteor_load = Some(t3.elapsed().as_secs_f64());
        if let Some((path, built)) = m.resource_cache() {
            cache = serde_json::json!({
                "state": if built { "built" } else { "mapped" },
                "path": path.map(|p| p.display().to_string()),
            });
        }
        let t4 = Instant::now();
        let per_image = meteor_segment_stats(&m, &tok);
        let stats = MetricStats {
            name: m.metric_name().to_string(),
            aggregate: Aggregate::Meteor,
            per_image,
        };
        ev.corpus.insert(stats.name.clone(), stats.corpus_value());
        meteor_score = Some(t4.elapsed().as_secs_f64());
        signature = Signature::new(Some(&m));
    }
    println!(
        "{}",
        serde_json::json!({
            "images": ev.per_image.len(),
            "threads": rayon::current_num_threads(),
            "load_s": t_load,
            "tokenize_s": t_tok,
            "score_s": t_score,
            "meteor_load_s": meteor_load,
            "meteor_score_s": meteor_score,
            "total_s": t0.elapsed().as_secs_f64(),
            "meteor_cache": cache,
            "corpus": ev.corpus,
            "signature": signature.to_string(),
        })
    );
    Ok(())
}
