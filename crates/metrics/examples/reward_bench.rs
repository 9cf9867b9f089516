//! SCST reward throughput: CIDEr-D rewards per second for a batch of 32 images × k = 5 sampled
//! captions, document frequencies from 6 000 training images' references (computed once, as
//! caplab's SCST stage does), each image's references prepared once.
//!
//!     cargo run --release -p caplab-metrics --example reward_bench [BATCHES]
//!
//! Captions are seeded random token sequences (Zipf-like word draws from 2 000 words, 8–15 words,
//! `<eos>` appended), candidates are references with words swapped, so the n-gram overlap is
//! realistic. Prints what is timed and the figure.

use std::time::Instant;

use caplab_metrics::cider::CiderD;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EOS: u32 = 2;

fn caption(rng: &mut ChaCha8Rng) -> Vec<u32> {
    let len = rng.random_range(8..=15);
    let mut c: Vec<u32> = (0..len)
        .map(|_| {
            // Zipf-like: small ids are frequent.
            let u: f64 = rng.random_range(0.0..1.0);
            4 + (2000f64.powf(u) as u32).min(1999)
        })
        .collect();
    c.push(EOS);
    c
}

fn main() {
    let batches: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let (images, refs_per_image, batch, k) = (6000usize, 5usize, 32usize, 5usize);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let train: Vec<Vec<Vec<u32>>> = (0..images)
        .map(|_| (0..refs_per_image).map(|_| caption(&mut rng)).collect())
        .collect();

    let t0 = Instant::now();
    let cider = CiderD::from_references(&train);
    let prepared: Vec<_> = train.iter().map(|r| cider.prepare(r)).collect();
    let setup_s = t0.elapsed().as_secs_f64();

    // Candidates: a reference of the image with three words replaced.
    let work: Vec<Vec<(usize, Vec<u32>)>> = (0..batches)
        .map(|_| {
            (0..batch * k)
                .map(|i| {
                    let image = rng.random_range(0..images);
                    let mut c = train[image][i % refs_per_image].clone();
                    for _ in 0..3 {
                        let at = rng.random_range(0..c.len() - 1);
                        c[at] = rng.random_range(4..2004);
                    }
                    (image, c)
                })
                .collect()
        })
        .collect();
    let t1 = Instant::now();
    let mut total = 0.0;
    for b in &work {
        for (image, c) in b {
            total += cider.score(c, &prepared[*image]);
        }
    }
    let secs = t1.elapsed().as_secs_f64();
    let rewards = (batches * batch * k) as f64;
    println!(
        "SCST reward (CIDEr-D, train df over {images} images × {refs_per_image} refs), one thread:"
    );
    println!("  set-up once (document frequencies + prepared references): {setup_s:.3} s");
    println!(
        "  {batches} batches of {batch} images × k={k}: {secs:.3} s → {:.0} rewards/s, {:.2} ms per batch (mean reward {:.3})",
        rewards / secs,
        secs / batches as f64 * 1e3,
        total / rewards
    );
}
