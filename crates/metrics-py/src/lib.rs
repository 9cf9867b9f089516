//! Native part of the `caplab_metrics` Python package: the PTB tokenizer and the scorers of
//! caplab-metrics on captions given in the caller's order. The pycocoevalcap-compatible classes
//! (`Bleu`, `Meteor`, `Rouge`, `Cider`, `PTBTokenizer`) are in `python/caplab_metrics`.

use caplab_metrics::meteor::Meteor;
use caplab_metrics::{stats_of_tokenized, Aggregate, EvalOptions, MetricStats, Tokenized};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::path::Path;

fn err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// PTB-tokenises captions as ONE run of pycocoevalcap's Java tokenizer (joined by newlines, in
/// this order): the tokens of each caption joined by single spaces, punctuation removed.
#[pyfunction]
fn tokenize(py: Python<'_>, captions: Vec<String>) -> Vec<String> {
    py.allow_threads(|| {
        caplab_metrics::ptb_tokenize_lines(&captions)
            .into_iter()
            .map(|t| t.join(" "))
            .collect()
    })
}

fn tokenized(refs: Vec<Vec<String>>, cands: Vec<String>) -> PyResult<Tokenized> {
    if refs.len() != cands.len() {
        return Err(PyValueError::new_err(format!(
            "{} reference lists but {} candidates",
            refs.len(),
            cands.len()
        )));
    }
    if let Some(i) = refs.iter().position(Vec::is_empty) {
        return Err(PyValueError::new_err(format!(
            "image {i} has no references"
        )));
    }
    Ok(Tokenized {
        ids: (0..cands.len()).map(|i| i.to_string()).collect(),
        cands,
        refs,
    })
}

fn metric<'a>(stats: &'a [MetricStats], name: &str) -> PyResult<&'a MetricStats> {
    stats
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| err(format!("internal: no {name} statistics")))
}

/// BLEU, ROUGE-L and CIDEr-D of tokenised captions (pycocoevalcap's scorers on the output of its
/// tokenizer), images in the given order. Returns (BLEU-1..4 corpus, BLEU-1..4 per image
/// (one list per order), [testlen, reflen, guess1..4, correct1..4] summed, ROUGE-L per image,
/// CIDEr-D per image).
#[allow(clippy::type_complexity)]
#[pyfunction]
fn score(
    py: Python<'_>,
    refs: Vec<Vec<String>>,
    cands: Vec<String>,
) -> PyResult<(Vec<f64>, Vec<Vec<f64>>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    let tok = tokenized(refs, cands)?;
    py.allow_threads(|| {
        let stats = stats_of_tokenized(&tok, &EvalOptions::default()).map_err(err)?;
        let m = &stats.metrics;
        let n = tok.ids.len();
        let bleu: Vec<&MetricStats> = (1..=4)
            .map(|k| metric(m, &format!("BLEU-{k}")))
            .collect::<PyResult<_>>()?;
        let corpus = bleu.iter().map(|b| b.corpus_value()).collect();
        let per_image = bleu
            .iter()
            .map(|b| (0..n).map(|i| b.image_value(i)).collect())
            .collect();
        let mut totals = vec![0f64; caplab_metrics::bleu::STATS];
        for s in &bleu[0].per_image {
            for (t, v) in totals.iter_mut().zip(s) {
                *t += v;
            }
        }
        let rouge = metric(m, "ROUGE-L")?;
        let cider = metric(m, "CIDEr")?;
        Ok((
            corpus,
            per_image,
            totals,
            (0..n).map(|i| rouge.image_value(i)).collect(),
            (0..n).map(|i| cider.image_value(i)).collect(),
        ))
    })
}

/// Full METEOR 1.5 of tokenised captions with the resources in `meteor_dir` (the directory of
/// `meteor-1.5.jar` and `data/paraphrase-en.gz`): (corpus score, per-image scores), as
/// pycocoevalcap's `Meteor` (the jar's corpus score from summed statistics). Also returns the
/// signature of the METEOR part (`full-1.5+<hash8>`).
#[pyfunction]
fn meteor(
    py: Python<'_>,
    refs: Vec<Vec<String>>,
    cands: Vec<String>,
    meteor_dir: String,
) -> PyResult<(f64, Vec<f64>, String)> {
    let tok = tokenized(refs, cands)?;
    py.allow_threads(|| {
        let m = Meteor::full(Path::new(&meteor_dir)).map_err(err)?;
        let ids = caplab_metrics::TokenizedIds::from_tokenized(&tok);
        let stats = MetricStats {
            name: m.metric_name().to_string(),
            aggregate: Aggregate::Meteor,
            per_image: caplab_metrics::meteor_segment_stats(&m, &ids),
        };
        let per = (0..tok.ids.len()).map(|i| stats.image_value(i)).collect();
        Ok((stats.corpus_value(), per, m.signature()))
    })
}

/// The signature line of scores computed with (`meteor_dir`) or without full METEOR.
#[pyfunction]
#[pyo3(signature = (meteor_dir=None))]
fn signature(py: Python<'_>, meteor_dir: Option<String>) -> PyResult<String> {
    py.allow_threads(|| {
        let m = match meteor_dir {
            Some(d) => Some(Meteor::full(Path::new(&d)).map_err(err)?),
            None => None,
        };
        Ok(caplab_metrics::Signature::new(m.as_ref()).to_string())
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tokenize, m)?)?;
    m.add_function(wrap_pyfunction!(score, m)?)?;
    m.add_function(wrap_pyfunction!(meteor, m)?)?;
    m.add_function(wrap_pyfunction!(signature, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
