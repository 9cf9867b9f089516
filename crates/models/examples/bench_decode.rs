//! CPU benchmark of caption search: captions per second of greedy and beam-5 decoding.
//!
//! Decodes 1 000 random image features (2048-d) with an untrained `CaptionDecoder` (LSTM, embed
//! 256, hidden 512, vocabulary 5 000, `first_step` conditioning, max_len 20) on the Flex and
//! NdArray backends, batched (100 or 1 000 images per call) and one image at a time. One image at
//! a time is timed on the first `SINGLE` images only and reported as captions per second.
//! Run: `cargo run -p caplab-models --example bench_decode [-- IMAGES [SINGLE]]`.

use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use caplab_models::search::{BeamSearch, GreedySearch, Hypothesis, Search as _};
use caplab_models::{CaptionDecoder, Condition, DecoderSpec};

const FEATURE_DIM: usize = 2048;
const VOCAB: usize = 5000;
const MAX_LEN: usize = 20;
const BEAM: usize = 5;
const SOS: u32 = 1;
const EOS: u32 = 2;

/// One search over a batch of features.
type Search<B> = fn(&CaptionDecoder<B>, Tensor<B, 2>) -> Vec<Hypothesis>;

fn greedy<B: Backend>(decoder: &CaptionDecoder<B>, features: Tensor<B, 2>) -> Vec<Hypothesis> {
    GreedySearch {
        max_len: MAX_LEN,
        sos: SOS,
        eos: EOS,
    }
    .decode(decoder, features)
}

fn beam<B: Backend>(decoder: &CaptionDecoder<B>, features: Tensor<B, 2>) -> Vec<Hypothesis> {
    let search = BeamSearch::new(BEAM, MAX_LEN, SOS, EOS);
    let [n, _] = features.dims();
    let device = features.device();
    let state = decoder.start(features);
    search.run_best(decoder, state, n, &device)
}

/// Captions per second of `search` over the first `images` rows, `batch` images per call.
fn rate<B: Backend>(
    decoder: &CaptionDecoder<B>,
    features: &Tensor<B, 2>,
    search: Search<B>,
    images: usize,
    batch: usize,
) -> (f64, f64) {
    let start = Instant::now();
    let mut words = 0usize;
    for from in (0..images).step_by(batch) {
        let rows = batch.min(images - from);
        let hyps = search(decoder, features.clone().narrow(0, from, rows));
        words += hyps.iter().map(|h| h.tokens.len()).sum::<usize>();
    }
    let seconds = start.elapsed().as_secs_f64();
    (images as f64 / seconds, words as f64 / images as f64)
}

fn bench_backend<B: Backend>(name: &str, images: usize, single: usize) {
    let device = B::Device::default();
    let spec = DecoderSpec {
        embed_dim: 256,
        hidden_dim: 512,
        condition: Condition::FirstStep,
        ..DecoderSpec::default()
    };
    let decoder = spec.init::<B>(FEATURE_DIM, VOCAB, &device);
    let features = Tensor::<B, 2>::random(
        [images, FEATURE_DIM],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    // Warm-up: allocator and thread pools.
    let _ = greedy(&decoder, features.clone().narrow(0, 0, 4.min(images)));
    let searches: [(&str, Search<B>); 2] = [("greedy", greedy::<B>), ("beam-5", beam::<B>)];
    for (search_name, search) in searches {
        for (label, batch, count) in [
            ("batch 1000", 1000, images),
            ("batch 100", 100, images),
            ("one at a time", 1, single.min(images)),
        ] {
            let (per_second, mean_len) = rate(&decoder, &features, search, count, batch);
            println!(
                "| {name:7} | {search_name:7} | {label:14} | {count:6} | {per_second:10.1} | {mean_len:5.1} |"
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let images = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let single = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    println!("| backend | search  | batching       | images | captions/s | words |");
    println!("|---------|---------|----------------|--------|------------|-------|");
    bench_backend::<Flex>("flex", images, single);
    bench_backend::<NdArray>("ndarray", images, single);
}
