//! Minimal reproductions of the burn-flex 0.21 costs caplab works around (issue 14), each timed
//! against the form caplab uses on the same data, on the Flex backend.
//!
//! 1. `tanh` is libm's scalar `tanhf`, one element at a time on one thread; caplab computes
//!    `2·σ(2x) − 1` (`caplab_models::activation::tanh`).
//! 2. `exp` is libm's scalar `expf` on one thread (log-softmax, sigmoid); no workaround, timed
//!    against a multiply for scale.
//! 3. An element-wise op on a permuted view (a convolution weight gradient comes back as one)
//!    walks it with a per-element strided iterator; caplab copies each gradient row-major once
//!    before clipping and Adam.
//! 4. The backward of `narrow` allocates a zero-filled gradient of the whole parent and adds the
//!    slice into it; T slices of a `[T·B, 4H]` tensor cost T whole-parent buffers. caplab's LSTM
//!    multiplies each step's own input instead of slicing a hoisted projection.
//! 5. A `[1, C, 1, 1]` broadcast against `[N, C, H, W]` runs element by element; the same values
//!    repeated to `[N, C, 1]` against the `[N, C, H·W]` view run with SIMD (caplab's BatchNorm).
//!
//! 6. A convolution's forward and backward: burn-flex converts the input to NHWC and flattens the
//!    kernel on the calling thread, and burn's weight gradient convolves two swapped (permuted)
//!    views that burn-flex copies element by element; caplab's im2col convolution runs every
//!    pass on rayon (`caplab_models::encoder::conv::forward`).
//!
//! Run: `cargo run --release -p caplab-models --example burn_flex_repros` (`just bench burn`).
//! Prints milliseconds, best of 10 after 2 warm-up runs, and the ratio slow / caplab's form.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Distribution, Tensor};
use caplab_models::activation::tanh;
use caplab_models::encoder::conv;

type B = Flex;
type AD = Autodiff<Flex>;

/// Best wall time of `f` over 10 runs after 2 warm-up runs, in milliseconds.
fn best<F: FnMut()>(mut f: F) -> f64 {
    for _ in 0..2 {
        f();
    }
    (0..10)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn row(case: &str, slow: &str, slow_ms: f64, fast: &str, fast_ms: f64) {
    println!(
        "| {case} | {slow} | {slow_ms:.2} | {fast} | {fast_ms:.2} | {:.1}× |",
        slow_ms / fast_ms
    );
}

fn main() {
    let device = Default::default();
    let normal = Distribution::Normal(0.0, 1.0);
    println!("| case | burn form | ms | caplab's form | ms | ratio |");
    println!("|---|---|---|---|---|---|");

    let x = Tensor::<B, 2>::random([1000, 2048], normal, &device);
    let slow = best(|| drop(x.clone().tanh().into_data()));
    let fast = best(|| drop(tanh(x.clone()).into_data()));
    row(
        "1. tanh, [1000, 2048]",
        "`x.tanh()`",
        slow,
        "`2·sigmoid(2x) − 1`",
        fast,
    );

    let y = Tensor::<B, 2>::random([1000, 5000], normal, &device);
    let slow = best(|| drop(y.clone().exp().into_data()));
    let fast = best(|| drop(y.clone().mul_scalar(1.0001).into_data()));
    row(
        "2. exp, [1000, 5000]",
        "`x.exp()`",
        slow,
        "(no workaround; `x · c` for scale)",
        fast,
    );
    let _ = sigmoid(y.clone());

    // A 3×3 convolution's weight gradient, [512, 512·9], as the permuted view Flex returns.
    let w = Tensor::<B, 2>::random([4608, 512], normal, &device);
    let slow = best(|| drop(w.clone().swap_dims(0, 1).powi_scalar(2).into_data()));
    let row_major = w.clone().swap_dims(0, 1).mul_scalar(1.0);
    let fast = best(|| drop(row_major.clone().powi_scalar(2).into_data()));
    row(
        "3. `g²` of a permuted [512, 4608] view",
        "on the view",
        slow,
        "on a row-major copy (copy made once)",
        fast,
    );

    // LSTM input projection: T = 21 steps of B = 160 rows, 4H = 1024.
    let (t, b, h4) = (21usize, 160usize, 1024usize);
    let xs = Tensor::<AD, 2>::random([t * b, h4], normal, &device).require_grad();
    let slow = best(|| {
        let loss = (0..t)
            .map(|i| xs.clone().narrow(0, i * b, b).sum())
            .reduce(|a, c| a + c)
            .expect("steps");
        drop(loss.backward());
    });
    let steps: Vec<Tensor<AD, 2>> = (0..t)
        .map(|_| Tensor::<AD, 2>::random([b, h4], normal, &device).require_grad())
        .collect();
    let fast = best(|| {
        let loss = steps
            .iter()
            .map(|s| s.clone().sum())
            .reduce(|a, c| a + c)
            .expect("steps");
        drop(loss.backward());
    });
    row(
        "4. backward of 21 row slices of [3360, 1024]",
        "`narrow` per step",
        slow,
        "one [160, 1024] tensor per step",
        fast,
    );

    let (n, c, hw) = (32usize, 64usize, 32usize);
    let img = Tensor::<B, 4>::random([n, c, hw, hw], normal, &device);
    let scale = Tensor::<B, 1>::random([c], normal, &device);
    let slow = best(|| drop((img.clone() * scale.clone().reshape([1, c, 1, 1])).into_data()));
    let fast = best(|| {
        let per = scale.clone().reshape([1, c, 1]).repeat_dim(0, n);
        let out = img.clone().reshape([n, c, hw * hw]) * per;
        drop(out.reshape([n, c, hw, hw]).into_data());
    });
    row(
        "5. per-channel scale of [32, 64, 32, 32]",
        "`x · s[1, C, 1, 1]`",
        slow,
        "`x[N, C, HW] · s[N, C, 1]`",
        fast,
    );

    // A ResNet layer's 3×3 convolution, forward and backward, as in a training step.
    let layer = Conv2dConfig::new([32, 32], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init::<AD>(&device);
    let input = Tensor::<AD, 4>::random([32, 32, 32, 32], normal, &device).require_grad();
    let slow = best(|| drop(layer.forward(input.clone()).sum().backward()));
    let fast = best(|| drop(conv::forward(&layer, input.clone()).sum().backward()));
    row(
        "6. 3×3 convolution of [32, 32, 32, 32], forward + backward",
        "`Conv2d::forward`",
        slow,
        "im2col + gemm per image on rayon",
        fast,
    );
}
