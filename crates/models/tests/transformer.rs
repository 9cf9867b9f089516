//! Transformer caption decoder against PyTorch fixtures from `scripts/parity/transformer.py`
//! (no torch needed here): forward output, cross-attention and every parameter's gradient; the
//! incremental decoding with the key/value cache against the full forward, step by step; the
//! cache under beam search's reordering; import errors and spec checks.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use burn_store::ModuleSnapshot;
use caplab_models::search::{BeamSearch, GreedySearch, Hypothesis, SamplingSearch, Search};
use caplab_models::transformer::import::{module_path, torch_key};
use caplab_models::transformer::{
    load_pytorch_transformer, NormPlacement, PositionKind, TransformerCaptionDecoder,
    TransformerSpec,
};
use caplab_models::{DecoderChoice, ImportError, ModelSpec};
use serde_json::Value;

type I = NdArray;
type A = Autodiff<NdArray>;

/// Largest |caplab − PyTorch| accepted for the logits and attention maps (float32, measured
/// ≤ 1e-6; see docs/parity.md).
const FORWARD_TOL: f32 = 1e-5;
/// Largest |caplab − PyTorch| accepted for a parameter gradient, relative to the largest
/// gradient entry of that parameter (at least 1).
const GRAD_TOL: f32 = 1e-5;
/// Largest |incremental − full forward| accepted for a step's log-probabilities.
const STEP_TOL: f32 = 1e-5;

const CASES: [&str; 2] = ["post_sinusoidal", "pre_learned"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformer")
}

fn fixture(case: &str) -> Value {
    let path = fixture_dir().join(format!("{case}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/parity/transformer.py", path.display()));
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

fn dim(json: &Value, key: &str) -> usize {
    json[key].as_u64().expect("dimension") as usize
}

fn shape(value: &Value) -> Vec<usize> {
    value["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect()
}

fn floats(value: &Value) -> Vec<f32> {
    value["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|x| x.as_f64().expect("float") as f32)
        .collect()
}

fn tensor<X: Backend, const D: usize>(value: &Value) -> Tensor<X, D> {
    Tensor::from_data(
        TensorData::new(floats(value), shape(value)),
        &Default::default(),
    )
}

fn tokens<X: Backend>(value: &Value) -> Tensor<X, 2, Int> {
    let ids: Vec<i64> = value["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|x| x.as_i64().expect("id"))
        .collect();
    Tensor::from_data(TensorData::new(ids, shape(value)), &Default::default())
}

fn spec(json: &Value) -> TransformerSpec {
    TransformerSpec {
        num_layers: dim(json, "num_layers"),
        d_model: dim(json, "d_model"),
        num_heads: dim(json, "num_heads"),
        d_ff: dim(json, "d_ff"),
        dropout: 0.0,
        norm: match json["norm"].as_str() {
            Some("pre") => NormPlacement::Pre,
            _ => NormPlacement::Post,
        },
        positions: match json["positions"].as_str() {
            Some("learned") => PositionKind::Learned,
            _ => PositionKind::Sinusoidal,
        },
        max_positions: dim(json, "max_positions"),
        global_token: json["global_token"].as_bool().expect("global_token"),
        weights: None,
    }
}

fn loaded<X: Backend>(case: &str) -> (Value, TransformerCaptionDecoder<X>) {
    let json = fixture(case);
    let decoder = spec(&json).init::<X>(
        dim(&json, "encoder_dim"),
        dim(&json, "vocab_size"),
        &Default::default(),
    );
    let path = fixture_dir().join(format!("{case}.safetensors"));
    let decoder = load_pytorch_transformer(decoder, &path, "").expect("the fixture imports");
    (json, decoder)
}

fn max_abs_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn values<X: Backend, const D: usize>(t: Tensor<X, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

#[test]
fn forward_and_gradients_match_pytorch() {
    for case in CASES {
        let (json, decoder) = loaded::<A>(case);
        let grid: Tensor<A, 3> = tensor(&json["grid"]);
        let inputs = tokens::<A>(&json["inputs"]);
        let (logits, alphas) = decoder.forward(grid, inputs);
        let diff = max_abs_diff(&values(logits.clone().inner()), &floats(&json["logits"]));
        eprintln!("{case}: logits max abs diff {diff:e}");
        assert!(diff <= FORWARD_TOL, "{case}: logits differ by {diff}");
        let diff = max_abs_diff(&values(alphas.inner()), &floats(&json["alphas"]));
        eprintln!("{case}: cross-attention max abs diff {diff:e}");
        assert!(
            diff <= FORWARD_TOL,
            "{case}: attention maps differ by {diff}"
        );

        let weights: Tensor<A, 3> = tensor(&json["loss_weights"]);
        let grads = (logits * weights).sum().backward();
        let grads = GradientsParams::from_grads(grads, &decoder);
        let torch_grads = json["grads"].as_object().expect("grads");
        let params = decoder.collect(None, None, false);
        assert_eq!(
            params.len(),
            torch_grads.len(),
            "{case}: one gradient per parameter"
        );
        let mut worst = 0.0f32;
        for param in params {
            let path = param.full_path();
            let key = torch_key(&path);
            let want_json = torch_grads
                .get(&key)
                .unwrap_or_else(|| panic!("{case}: torch has no gradient for {key}"));
            let (_, transpose) = module_path(&key);
            let id = param.tensor_id.expect("a parameter id");
            let got = match param.shape.num_dims() {
                1 => values(
                    grads
                        .get::<I, 1>(id)
                        .unwrap_or_else(|| panic!("{case}: no gradient for {path}")),
                ),
                2 => {
                    let g = grads
                        .get::<I, 2>(id)
                        .unwrap_or_else(|| panic!("{case}: no gradient for {path}"));
                    values(if transpose { g.transpose() } else { g })
                }
                n => panic!("{path}: unexpected rank {n}"),
            };
            let want = floats(want_json);
            let scale = want.iter().fold(1.0f32, |m, x| m.max(x.abs()));
            let rel = max_abs_diff(&got, &want) / scale;
            worst = worst.max(rel);
            assert!(
                rel <= GRAD_TOL,
                "{case}: gradient of {key} differs by {rel} (relative)"
            );
        }
        eprintln!("{case}: worst relative gradient diff {worst:e}");
    }
}

/// Feeds `inputs` one token at a time through the cache: per step, log-probabilities [N, V] and
/// the cross-attention map [N, L].
fn incremental<X: Backend>(
    decoder: &TransformerCaptionDecoder<X>,
    grid: Tensor<X, 3>,
    inputs: Tensor<X, 2, Int>,
) -> Vec<(Tensor<X, 2>, Tensor<X, 2>)> {
    let [n, t] = inputs.dims();
    let mut state = decoder.start(grid);
    let mut out = Vec::with_capacity(t);
    for i in 0..t {
        let step = inputs.clone().narrow(1, i, 1).reshape([n]);
        let (logp, next) = decoder.step(step, state);
        out.push((logp, next.alpha.clone()));
        state = next;
    }
    out
}

#[test]
fn incremental_decoding_with_cache_equals_full_forward_step_by_step() {
    for case in CASES {
        let (json, decoder) = loaded::<I>(case);
        let grid: Tensor<I, 3> = tensor(&json["grid"]);
        let inputs = tokens::<I>(&json["inputs"]);
        let (logits, alphas) = decoder.forward(grid.clone(), inputs.clone());
        let full = log_softmax(logits, 2);
        let torch = log_softmax(tensor::<I, 3>(&json["logits"]), 2);
        let [n, _, v] = full.dims();
        let l = alphas.dims()[2];
        let mut worst = [0.0f32; 3];
        for (i, (logp, alpha)) in incremental(&decoder, grid.clone(), inputs.clone())
            .into_iter()
            .enumerate()
        {
            let at = |x: Tensor<I, 3>, w: usize| values(x.narrow(1, i, 1).reshape([n, w]));
            let step = values(logp);
            let diffs = [
                max_abs_diff(&step, &at(full.clone(), v)),
                max_abs_diff(&step, &at(torch.clone(), v)),
                max_abs_diff(&values(alpha), &at(alphas.clone(), l)),
            ];
            for (what, diff) in ["cache vs forward", "cache vs torch", "attention map"]
                .iter()
                .zip(diffs)
            {
                assert!(diff <= STEP_TOL, "{case} step {i}: {what} {diff}");
            }
            for (w, d) in worst.iter_mut().zip(diffs) {
                *w = w.max(d);
            }
        }
        eprintln!(
            "{case}: incremental vs forward {:e}, vs torch {:e}, maps {:e}",
            worst[0], worst[1], worst[2]
        );
    }
}

#[test]
fn reordered_cache_continues_the_reordered_rows() {
    // Beam search reorders the state with `select` between steps: the cache of rows [1, 0, 1]
    // must continue exactly as decoding those rows' sequences from the start.
    let (json, decoder) = loaded::<I>("pre_learned");
    let grid: Tensor<I, 3> = tensor(&json["grid"]);
    let inputs = tokens::<I>(&json["inputs"]);
    let [n, t] = inputs.dims();
    let mut state = decoder.start(grid.clone());
    for i in 0..2 {
        let step = inputs.clone().narrow(1, i, 1).reshape([n]);
        state = decoder.step(step, state).1;
    }
    let order =
        Tensor::<I, 1, Int>::from_data(TensorData::new(vec![1i64, 0, 1], [3]), &Default::default());
    let mut state = state.select(order.clone());
    let permuted = inputs.select(0, order.clone());
    let (logits, _) = decoder.forward(grid.select(0, order), permuted.clone());
    let full = log_softmax(logits, 2);
    let v = full.dims()[2];
    for i in 2..t {
        let step = permuted.clone().narrow(1, i, 1).reshape([3]);
        let (logp, next) = decoder.step(step, state);
        state = next;
        let want = values(full.clone().narrow(1, i, 1).reshape([3, v]));
        let diff = max_abs_diff(&values(logp), &want);
        assert!(diff <= STEP_TOL, "step {i}: {diff}");
    }
}

/// Sum of the teacher-forced log-probabilities of `hyp`'s words and, when `with_eos`, `<eos>`.
fn forced_log_prob(
    decoder: &TransformerCaptionDecoder<I>,
    grid: Tensor<I, 3>,
    hyp: &Hypothesis,
    sos: u32,
    eos: u32,
    with_eos: bool,
) -> f64 {
    let mut inputs = vec![sos as i64];
    inputs.extend(hyp.tokens.iter().map(|w| *w as i64));
    let mut targets: Vec<u32> = hyp.tokens.clone();
    if with_eos {
        targets.push(eos);
    } else {
        inputs.pop();
    }
    if targets.is_empty() {
        return 0.0;
    }
    let t = inputs.len();
    let inputs =
        Tensor::<I, 2, Int>::from_data(TensorData::new(inputs, [1, t]), &Default::default());
    let (logits, _) = decoder.forward(grid, inputs);
    let logp = log_softmax(logits, 2);
    let v = logp.dims()[2];
    let all = values(logp);
    targets
        .iter()
        .enumerate()
        .map(|(i, w)| all[i * v + *w as usize] as f64)
        .sum()
}

#[test]
fn greedy_beam_and_sampling_decode_with_the_cache_consistently() {
    // Each search's caption scores under the full forward what the search summed step by step
    // through the cache (beam search reorders it with its beams every step).
    let device = Default::default();
    let spec = TransformerSpec {
        num_layers: 2,
        d_model: 16,
        num_heads: 4,
        d_ff: 24,
        dropout: 0.0,
        positions: PositionKind::Learned,
        max_positions: 12,
        global_token: true,
        ..TransformerSpec::default()
    };
    <I as Backend>::seed(&device, 7);
    let decoder = spec.init::<I>(6, 9, &device);
    let grid = Tensor::<I, 3>::random([3, 4, 6], Distribution::Normal(0.0, 2.0), &device);
    let (sos, eos, max_len) = (1u32, 2u32, 8usize);
    let greedy = GreedySearch { max_len, sos, eos };
    let beam = BeamSearch::new(4, max_len, sos, eos);
    let sampling = SamplingSearch {
        max_len,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 3,
        sos,
        eos,
    };
    let runs: Vec<(&str, Vec<Hypothesis>)> = vec![
        (
            "greedy",
            greedy.run(&decoder, decoder.start(grid.clone()), 3, &device),
        ),
        (
            "beam",
            beam.run_best(&decoder, decoder.start(grid.clone()), 3, &device),
        ),
        (
            "sample",
            sampling.run(&decoder, decoder.start(grid.clone()), 3, &device),
        ),
    ];
    for (name, hyps) in runs {
        assert_eq!(hyps.len(), 3);
        for (row, hyp) in hyps.iter().enumerate() {
            let g = grid.clone().narrow(0, row, 1);
            let with_eos = forced_log_prob(&decoder, g.clone(), hyp, sos, eos, true);
            let without = forced_log_prob(&decoder, g, hyp, sos, eos, false);
            // A caption cut at max_len has no <eos> score.
            let best = if (with_eos - hyp.log_prob).abs() < (without - hyp.log_prob).abs() {
                with_eos
            } else {
                without
            };
            assert!(
                (best - hyp.log_prob).abs() < 1e-4,
                "{name} row {row}: search {} vs forward {best}",
                hyp.log_prob
            );
        }
    }
}

#[test]
fn beam_search_of_one_beam_is_greedy_search() {
    let device = Default::default();
    let spec = TransformerSpec {
        num_layers: 2,
        d_model: 8,
        num_heads: 2,
        d_ff: 16,
        dropout: 0.0,
        ..TransformerSpec::default()
    };
    <I as Backend>::seed(&device, 11);
    let decoder = spec.init::<I>(5, 10, &device);
    let grid = Tensor::<I, 3>::random([4, 3, 5], Distribution::Normal(0.0, 2.0), &device);
    let greedy = GreedySearch {
        max_len: 9,
        sos: 1,
        eos: 2,
    }
    .run(&decoder, decoder.start(grid.clone()), 4, &device);
    let beam = BeamSearch::new(1, 9, 1, 2).run_best(&decoder, decoder.start(grid), 4, &device);
    for (g, b) in greedy.iter().zip(&beam) {
        assert_eq!(g.tokens, b.tokens);
        assert!((g.log_prob - b.log_prob).abs() < 1e-5);
    }
}

/// `name.safetensors` of the fixture rewritten by `edit` into a temporary file.
fn edited_fixture(
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Vec<f32>, Vec<usize>)>),
) -> PathBuf {
    let path = fixture_dir().join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&path).expect("fixture");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut tensors: Vec<(String, Vec<f32>, Vec<usize>)> = file
        .tensors()
        .into_iter()
        .map(|(key, view)| {
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, data, view.shape().to_vec())
        })
        .collect();
    edit(&mut tensors);
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .into_iter()
        .map(|(k, v, s)| (k, v.iter().flat_map(|x| x.to_le_bytes()).collect(), s))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, b, s)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .expect("view");
            (k.clone(), view)
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("caplab-transformer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join(format!("{name}-{}.safetensors", views.len()));
    safetensors::serialize_to_file(views, None, &out).expect("write");
    out
}

#[test]
fn import_names_missing_and_unexpected_keys() {
    let json = fixture("post_sinusoidal");
    let path = edited_fixture("post_sinusoidal", |tensors| {
        tensors.retain(|(k, _, _)| k != "decoder.layers.1.norm2.weight" && k != "head.bias");
        tensors.push((
            "decoder.layers.2.linear1.bias".into(),
            vec![0.0; 12],
            vec![12],
        ));
    });
    let decoder = spec(&json).init::<I>(6, 13, &Default::default());
    let err = match load_pytorch_transformer(decoder, &path, "") {
        Err(e @ ImportError::Mismatch { .. }) => e,
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("an incomplete checkpoint imported"),
    };
    let ImportError::Mismatch {
        missing,
        unexpected,
        ..
    } = &err
    else {
        unreachable!()
    };
    let mut missing = missing.clone();
    missing.sort();
    assert_eq!(missing, ["decoder.layers.1.norm2.weight", "head.bias"]);
    assert_eq!(unexpected, &["decoder.layers.2.linear1.bias"]);
    let text = err.to_string();
    assert!(text.contains("decoder.layers.1.norm2.weight"), "{text}");
    assert!(text.contains("decoder.layers.2.linear1.bias"), "{text}");

    // A post-norm checkpoint into a pre-norm decoder with a global token: the other side's keys.
    let pre = TransformerSpec {
        norm: NormPlacement::Pre,
        global_token: true,
        ..spec(&json)
    };
    let decoder = pre.init::<I>(6, 13, &Default::default());
    let path = fixture_dir().join("post_sinusoidal.safetensors");
    let text = match load_pytorch_transformer(decoder, &path, "") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a post-norm checkpoint imported into a pre-norm decoder"),
    };
    for key in [
        "decoder.norm.weight",
        "decoder.norm.bias",
        "global_proj.weight",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
}

#[test]
fn spec_errors_name_the_key() {
    let bad = TransformerSpec {
        d_model: 10,
        num_heads: 4,
        ..TransformerSpec::default()
    };
    let err = bad.validate().expect_err("4 heads do not divide 10");
    assert_eq!(err.key, "model.transformer.num_heads");
    assert!(
        err.to_string()
            .contains("must divide model.transformer.d_model = 10"),
        "{err}"
    );

    let learned = TransformerSpec {
        positions: PositionKind::Learned,
        max_positions: 21,
        ..TransformerSpec::default()
    };
    assert!(learned.check_length("eval.search.max_len", 20).is_ok());
    let err = learned
        .check_length("eval.search.max_len", 21)
        .expect_err("22 positions in a table of 21");
    assert_eq!(err.key, "eval.search.max_len");
    assert!(
        err.message.contains("model.transformer.max_positions = 21"),
        "{err}"
    );
    let sinusoidal = TransformerSpec::default();
    assert!(sinusoidal
        .check_length("eval.search.max_len", 10_000)
        .is_ok());

    let both: Result<ModelSpec, _> = serde_json::from_str(
        r#"{ "encoder": { "arch": "resnet_tiny" }, "attention": {},
             "transformer": { "d_model": 8, "num_heads": 2 } }"#,
    );
    let err = both.expect_err("two decoders").to_string();
    assert!(
        err.contains("model.attention and model.transformer"),
        "{err}"
    );
    let one: ModelSpec = serde_json::from_str(
        r#"{ "encoder": { "arch": "resnet_tiny" },
             "transformer": { "d_model": 8, "num_heads": 2, "norm": "pre" } }"#,
    )
    .expect("a transformer spec");
    let DecoderChoice::Transformer(t) = &one.decoder else {
        panic!("a transformer decoder");
    };
    assert_eq!((t.d_model, t.num_heads, t.norm), (8, 2, NormPlacement::Pre));
    let unknown: Result<ModelSpec, _> = serde_json::from_str(
        r#"{ "encoder": { "arch": "resnet_tiny" }, "transformer": { "heads": 2 } }"#,
    );
    assert!(unknown
        .expect_err("unknown key")
        .to_string()
        .contains("heads"));
}

#[test]
fn captioner_decodes_and_maps_attention_with_a_transformer() {
    let device = Default::default();
    let spec: ModelSpec = serde_json::from_str(
        r#"{ "encoder": { "arch": "resnet_tiny" }, "transformer":
             { "num_layers": 1, "d_model": 8, "num_heads": 2, "d_ff": 16, "dropout": 0.0 } }"#,
    )
    .expect("model spec");
    <I as Backend>::seed(&device, 5);
    let model = spec.init::<I>(12, &device);
    let images = Tensor::<I, 4>::random([2, 3, 64, 64], Distribution::Default, &device);
    let features = model.features(images);
    let greedy = GreedySearch {
        max_len: 6,
        sos: 1,
        eos: 2,
    };
    let (hyps, maps) = model.attend(features.clone(), &greedy).expect("maps");
    let l = match &features {
        caplab_models::Features::Grid(g) => g.dims()[1],
        caplab_models::Features::Pooled(_) => panic!("a transformer reads the grid"),
    };
    for (hyp, map) in hyps.iter().zip(&maps) {
        assert_eq!(map.len(), hyp.tokens.len());
        for m in map {
            assert_eq!(m.len(), l);
            let sum: f32 = m.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-5,
                "mean of softmax rows sums to 1: {sum}"
            );
        }
    }
    let search = caplab_models::search::SearchSpec::Greedy { max_len: 6 };
    let captions = model.caption(features, &search, 1, 2, None, 1);
    assert_eq!(captions.len(), 2);
    assert_eq!(captions[0].tokens, hyps[0].tokens);
}
