//! `Conv2d` forward for the encoders: on the CPU backend, an im2col convolution whose every
//! step runs on rayon's threads, with its own backward when training.
//!
//! burn-flex 0.21 converts a convolution's input to NHWC and flattens its kernel on the calling
//! thread before its parallel tiles start; burn computes the input gradient with a transposed
//! convolution (also serial in part) and the weight gradient as a convolution of the input and
//! the output gradient with their first two axes swapped, which burn-flex makes contiguous with
//! a scalar strided walk. In a baseline training step (ResNet-tiny, 32 images of 64 px) those
//! serial parts kept the main thread busy while the other core waited.
//!
//! Here, per image `n` (`P` output positions, `R = channels_in · kh · kw` kernel taps):
//! - forward: `cols[n]` `[R, P]` (im2col), `out[n] = W [C_out, R] · cols[n]`;
//! - input gradient: `dcols = Wᵀ · g[n]`, scattered back with col2im;
//! - weight gradient: `Σₙ g[n] · cols[n]ᵀ`, summed over fixed chunks of images in a fixed
//!   order, so the result does not depend on the number of threads.
//!
//! Images run in parallel, each with a single-threaded `gemm` call (a batch smaller than the
//! thread count lets gemm split each image's product instead). The arithmetic is the
//! textbook one (PyTorch's CPU convolution is the same decomposition); results agree with burn's
//! convolution to float rounding (`matches_burns_convolution_and_gradients`).
//!
//! [`forward`] takes this path on `Flex` and `Autodiff<Flex>` for one-group convolutions with
//! symmetric padding (every ResNet, VGG and Inception v3 convolution; a bias is added after it
//! with burn's ops); anything else runs burn's `Conv2d::forward`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex::{cast, contiguous, is_cpu, is_cpu_train, zeroed, CpuTrain};

/// Weight-gradient partial sums: at most this many, over equal chunks of the batch.
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// `conv.forward(x)`: `x` `[batch, channels_in, height, width]` →
/// `[batch, channels_out, height_out, width_out]`.
pub fn forward<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let Some(geometry) = Geometry::of(conv, x.dims()) else {
        return strided_pointwise(conv, x.clone()).unwrap_or_else(|| conv.forward(x));
    };
    let weight = conv.weight.val();
    let out: Tensor<B, 4> = if is_cpu_train::<B>() {
        let (Ok(x), Ok(weight)) = (cast::<_, Tensor<CpuTrain, 4>>(x), cast(weight)) else {
            unreachable!("B is Autodiff<Flex>")
        };
        let Ok(out) = cast(conv2d_train(x, weight, geometry)) else {
            unreachable!("B is Autodiff<Flex>")
        };
        out
    } else {
        let (Ok(x), Ok(weight)) = (
            cast::<_, Tensor<Flex, 4>>(x),
            cast::<_, Tensor<Flex, 4>>(weight),
        ) else {
            unreachable!("B is Flex: Geometry::of checked it")
        };
        let out = conv2d_forward(
            &x.into_primitive().tensor(),
            &weight.into_primitive().tensor(),
            &geometry,
        );
        let Ok(out) = cast(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(
            out,
        ))) else {
            unreachable!("B is Flex")
        };
        out
    };
    match &conv.bias {
        // The bias per output channel, repeated to `[N, C_out, 1]` against the `[N, C_out, P]`
        // view: a broadcast Flex runs with SIMD (a `[1, C, 1, 1]` one runs element by element).
        Some(bias) => {
            let [n, c, h, w] = out.dims();
            let bias = bias.val().reshape([1, c, 1]).repeat_dim(0, n);
            (out.reshape([n, c, h * w]) + bias).reshape([n, c, h, w])
        }
        None => out,
    }
}

/// A 1 × 1 convolution with stride > 1 and no padding (ResNet's `downsample`) as the stride-1
/// convolution of every `stride`-th pixel: the same output, for backends other than Flex.
///
/// burn 0.21's CubeCL convolution (wgpu here, and the same kernels on CUDA) returns a wrong input
/// gradient for exactly this geometry (100 % relative error against burn's NdArray, shown with
/// burn alone by `burn_conv2d_input_gradient_1x1_stride_2` in tests/gpu.rs); its stride-1 1 × 1
/// gradient is right, and so is the gradient of the slicing here. `None` for any other geometry.
fn strided_pointwise<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Option<Tensor<B, 4>> {
    let [sh, sw] = conv.stride;
    let unpadded = matches!(
        conv.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    if conv.kernel_size != [1, 1] || [sh, sw] == [1, 1] || conv.groups != 1 || !unpadded {
        return None;
    }
    let [n, c, h, w] = x.dims();
    let (oh, ow) = ((h - 1) / sh + 1, (w - 1) / sw + 1);
    // Zero rows and columns at the end make the sides multiples of the stride (never read).
    let device = x.device();
    let x = if oh * sh > h {
        Tensor::cat(vec![x, Tensor::zeros([n, c, oh * sh - h, w], &device)], 2)
    } else {
        x
    };
    let x = if ow * sw > w {
        Tensor::cat(
            vec![x, Tensor::zeros([n, c, oh * sh, ow * sw - w], &device)],
            3,
        )
    } else {
        x
    };
    let x = x
        .reshape([n, c, oh, sh, ow, sw])
        .slice([0..n, 0..c, 0..oh, 0..1, 0..ow, 0..1])
        .reshape([n, c, oh, ow]);
    Some(burn::tensor::module::conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], conv.dilation, 1),
    ))
}

/// Sizes of one convolution: input `[batch, channels_in, h, w]`, kernel `[channels_out,
/// channels_in, kh, kw]`, output `[batch, channels_out, out_h, out_w]`.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    channels_in: usize,
    h: usize,
    w: usize,
    channels_out: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    out_h: usize,
    out_w: usize,
}

impl Geometry {
    /// The geometry where [`forward`] takes the im2col path: `B` is `Flex` or
    /// `Autodiff<Flex>`, one group, symmetric padding. `None` otherwise.
    fn of<B: Backend>(conv: &Conv2d<B>, [batch, channels_in, h, w]: [usize; 4]) -> Option<Self> {
        if !(is_cpu_train::<B>() || is_cpu::<B>()) || conv.groups != 1 {
            return None;
        }
        let padding = match conv.padding {
            PaddingConfig2d::Valid => [0, 0],
            PaddingConfig2d::Explicit(top, left, bottom, right)
                if top == bottom && left == right =>
            {
                [top, left]
            }
            _ => return None,
        };
        let [channels_out, kernel_in, kh, kw] = conv.weight.dims();
        let span = |size: usize, k: usize, s: usize, p: usize, d: usize| {
            let reach = d * (k - 1) + 1;
            (size + 2 * p >= reach).then(|| (size + 2 * p - reach) / s + 1)
        };
        let [sh, sw] = conv.stride;
        let [dh, dw] = conv.dilation;
        if kernel_in != channels_in || kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return None;
        }
        Some(Geometry {
            batch,
            channels_in,
            h,
            w,
            channels_out,
            kh,
            kw,
            stride: conv.stride,
            padding,
            dilation: conv.dilation,
            out_h: span(h, kh, sh, padding[0], dh)?,
            out_w: span(w, kw, sw, padding[1], dw)?,
        })
    }

    /// Kernel taps per output position (`R`).
    fn taps(&self) -> usize {
        self.channels_in * self.kh * self.kw
    }

    /// Output positions per image (`P`).
    fn positions(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Input values per image.
    fn image(&self) -> usize {
        self.channels_in * self.h * self.w
    }

    /// Whether `cols` is the image itself (a 1x1 kernel, stride 1, no padding).
    fn is_identity(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// The input row and column that output `(oh, ow)` reads through tap `(i, j)`, if inside.
    fn source(&self, o: usize, tap: usize, axis: usize) -> Option<usize> {
        let (size, s, p, d) = match axis {
            0 => (self.h, self.stride[0], self.padding[0], self.dilation[0]),
            _ => (self.w, self.stride[1], self.padding[1], self.dilation[1]),
        };
        (o * s + tap * d).checked_sub(p).filter(|&i| i < size)
    }

    /// im2col of one image `[channels_in, h, w]` into `cols` `[R, P]`.
    fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        let p = self.positions();
        for c in 0..self.channels_in {
            let plane = &image[c * self.h * self.w..(c + 1) * self.h * self.w];
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let row = ((c * self.kh + i) * self.kw + j) * p;
                    let row = &mut cols[row..row + p];
                    for oh in 0..self.out_h {
                        let out = &mut row[oh * self.out_w..(oh + 1) * self.out_w];
                        match self.source(oh, i, 0) {
                            None => out.fill(0.0),
                            Some(ih) => {
                                let line = &plane[ih * self.w..(ih + 1) * self.w];
                                for (ow, v) in out.iter_mut().enumerate() {
                                    *v = self.source(ow, j, 1).map_or(0.0, |iw| line[iw]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// col2im: adds `cols` `[R, P]` back into one image's gradient `[channels_in, h, w]`.
    fn col2im(&self, cols: &[f32], image: &mut [f32]) {
        let p = self.positions();
        for c in 0..self.channels_in {
            let plane = &mut image[c * self.h * self.w..(c + 1) * self.h * self.w];
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let row = ((c * self.kh + i) * self.kw + j) * p;
                    let row = &cols[row..row + p];
                    for oh in 0..self.out_h {
                        let Some(ih) = self.source(oh, i, 0) else {
                            continue;
                        };
                        let line = &mut plane[ih * self.w..(ih + 1) * self.w];
                        for (ow, &v) in row[oh * self.out_w..(oh + 1) * self.out_w]
                            .iter()
                            .enumerate()
                        {
                            if let Some(iw) = self.source(ow, j, 1) {
                                line[iw] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst [m, n] (+)= a · b` for row-major `a` (`[m, k]`, or `[k, m]` read transposed when
/// `a_t`) and `b` (`[k, n]`, or `[n, k]` read transposed when `b_t`): on the calling thread, or
/// with gemm's own split over `threads` rayon threads when `threads > 1`.
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    [m, k, n]: [usize; 3],
    accumulate: bool,
    threads: usize,
) {
    assert!(dst.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    let (a_rs, a_cs) = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (b_rs, b_cs) = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: the assert above bounds every index the strides reach; `dst` does not alias
    // `a` or `b` (a `&mut` and two `&` slices).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

/// Threads each image's `gemm` splits over: 1 when the batch alone fills rayon's threads, more
/// for small batches (one image encoded on many cores). gemm splits rows and columns, never the
/// sums, so the result is the same (`gemm_split_over_threads_gives_the_serial_result`).
fn gemm_threads(batch: usize) -> usize {
    (rayon::current_num_threads() / batch.max(1)).max(1)
}

/// Forward: `[batch, channels_out, out_h, out_w]`.
fn conv2d_forward(x: &FlexTensor, weight: &FlexTensor, g: &Geometry) -> FlexTensor {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let (xs, ws): (&[f32], &[f32]) = (x.storage(), weight.storage());
    let (r, p) = (g.taps(), g.positions());
    let split = gemm_threads(g.batch);
    let mut out = zeroed(g.batch * g.channels_out * p);
    out.par_chunks_mut((g.channels_out * p).max(1))
        .enumerate()
        .for_each(|(n, out)| {
            let image = &xs[n * g.image()..(n + 1) * g.image()];
            if g.is_identity() {
                matmul(
                    out,
                    ws,
                    false,
                    image,
                    false,
                    [g.channels_out, r, p],
                    false,
                    split,
                );
            } else {
                let mut cols = vec![0f32; r * p];
                g.im2col(image, &mut cols);
                matmul(
                    out,
                    ws,
                    false,
                    &cols,
                    false,
                    [g.channels_out, r, p],
                    false,
                    split,
                );
            }
        });
    FlexTensor::from_data(TensorData::new(
        out,
        [g.batch, g.channels_out, g.out_h, g.out_w],
    ))
}

/// Input gradient `[batch, channels_in, h, w]` from the output gradient.
fn conv2d_input_grad(grad: &FlexTensor, weight: &FlexTensor, g: &Geometry) -> FlexTensor {
    let (grad, weight) = (contiguous(grad), contiguous(weight));
    let (gs, ws): (&[f32], &[f32]) = (grad.storage(), weight.storage());
    let (r, p) = (g.taps(), g.positions());
    let split = gemm_threads(g.batch);
    let mut dx = zeroed(g.batch * g.image());
    dx.par_chunks_mut(g.image().max(1))
        .enumerate()
        .for_each(|(n, dx)| {
            let gn = &gs[n * g.channels_out * p..(n + 1) * g.channels_out * p];
            // A 1x1 kernel at stride 1 writes the image's gradient directly; otherwise the
            // columns' gradient is scattered back by col2im.
            let mut cols = Vec::new();
            let target: &mut [f32] = if g.is_identity() {
                &mut *dx
            } else {
                cols.resize(r * p, 0.0);
                &mut cols
            };
            let dims = [r, g.channels_out, p];
            matmul(target, ws, true, gn, false, dims, false, split);
            if !g.is_identity() {
                g.col2im(&cols, dx);
            }
        });
    FlexTensor::from_data(TensorData::new(dx, [g.batch, g.channels_in, g.h, g.w]))
}

/// Weight gradient `[channels_out, channels_in, kh, kw]`: `Σₙ g[n] · cols[n]ᵀ`, as partial sums
/// over up to [`WEIGHT_GRAD_CHUNKS`] equal chunks of the batch added in order.
fn conv2d_weight_grad(x: &FlexTensor, grad: &FlexTensor, g: &Geometry) -> FlexTensor {
    let (x, grad) = (contiguous(x), contiguous(grad));
    let (xs, gs): (&[f32], &[f32]) = (x.storage(), grad.storage());
    let (r, p) = (g.taps(), g.positions());
    let chunk = g.batch.div_ceil(WEIGHT_GRAD_CHUNKS).max(1);
    let partials: Vec<Vec<f32>> = (0..g.batch.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut dw = vec![0f32; g.channels_out * r];
            let mut cols = vec![0f32; if g.is_identity() { 0 } else { r * p }];
            for n in c * chunk..((c + 1) * chunk).min(g.batch) {
                let image = &xs[n * g.image()..(n + 1) * g.image()];
                let gn = &gs[n * g.channels_out * p..(n + 1) * g.channels_out * p];
                let cols: &[f32] = if g.is_identity() {
                    image
                } else {
                    g.im2col(image, &mut cols);
                    &cols
                };
                matmul(
                    &mut dw,
                    gn,
                    false,
                    cols,
                    true,
                    [g.channels_out, p, r],
                    n > c * chunk,
                    1,
                );
            }
            dw
        })
        .collect();
    // Added in chunk order, each element on its own: the same sums on any number of threads.
    let mut dw = zeroed(g.channels_out * r);
    dw.par_chunks_mut(4096).enumerate().for_each(|(i, dw)| {
        let (from, len) = (i * 4096, dw.len());
        for partial in &partials {
            for (d, v) in dw.iter_mut().zip(&partial[from..from + len]) {
                *d += v;
            }
        }
    });
    FlexTensor::from_data(TensorData::new(
        dw,
        [g.channels_out, g.channels_in, g.kh, g.kw],
    ))
}

/// The convolution on `Autodiff<Flex>`, recorded with [`Conv2dBackward`].
fn conv2d_train(
    x: Tensor<CpuTrain, 4>,
    weight: Tensor<CpuTrain, 4>,
    geometry: Geometry,
) -> Tensor<CpuTrain, 4> {
    let x = x.into_primitive().tensor();
    let weight = weight.into_primitive().tensor();
    let out = conv2d_forward(&x.primitive, &weight.primitive, &geometry);
    let out = match Conv2dBackward
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            prep.finish((x_state, weight_state, geometry), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Backward of [`conv2d_train`].
#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 2> for Conv2dBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, geometry) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, conv2d_input_grad(&grad, &weight, &geometry));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, conv2d_weight_grad(&x, &grad, &geometry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::flex::assert_close;
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// Output, input gradient, weight gradient and bias gradient (empty without a bias) of
    /// `conv` on `x`, through [`forward`] or burn's `Conv2d::forward`, for a fixed weighting of
    /// the output.
    fn run(conv: &Conv2d<CpuTrain>, x: &Tensor<CpuTrain, 4>, ours: bool) -> [Vec<f32>; 4] {
        let x = x.clone().require_grad();
        let out = if ours {
            forward(conv, x.clone())
        } else {
            conv.forward(x.clone())
        };
        let dims = out.dims();
        let n = dims.iter().product::<usize>();
        let weights = Tensor::<CpuTrain, 4>::from_data(
            TensorData::new(
                (0..n)
                    .map(|i| ((i * 7919) % 113) as f32 / 56.0 - 1.0)
                    .collect(),
                dims,
            ),
            &out.device(),
        );
        let values = out.clone().into_data().iter::<f32>().collect();
        let grads = (out * weights).sum().backward();
        let dx = x.grad(&grads).expect("input gradient");
        let dw = conv.weight.grad(&grads).expect("weight gradient");
        let db = conv.bias.as_ref().map_or_else(Vec::new, |b| {
            let db = b.grad(&grads).expect("bias gradient");
            db.into_data().iter::<f32>().collect()
        });
        [
            values,
            dx.into_data().iter::<f32>().collect(),
            dw.into_data().iter::<f32>().collect(),
            db,
        ]
    }

    #[test]
    fn matches_burns_convolution_and_gradients() {
        let device = Default::default();
        // Square and rectangular kernels, strides 1 and 2, padding, dilation, 1x1 kernels with
        // and without stride (the identity im2col), a kernel larger than the unpadded input;
        // every other case with a bias.
        let cases: [[[usize; 2]; 4]; 7] = [
            [[3, 3], [1, 1], [1, 1], [1, 1]],
            [[3, 3], [2, 2], [1, 1], [1, 1]],
            [[1, 7], [1, 1], [0, 3], [1, 1]],
            [[1, 1], [1, 1], [0, 0], [1, 1]],
            [[1, 1], [2, 2], [0, 0], [1, 1]],
            [[3, 3], [1, 2], [2, 2], [2, 2]],
            [[7, 7], [2, 2], [3, 3], [1, 1]],
        ];
        for (i, [kernel, stride, padding, dilation]) in cases.into_iter().enumerate() {
            let bias = i % 2 == 1;
            let conv = Conv2dConfig::new([5, 6], kernel)
                .with_stride(stride)
                .with_dilation(dilation)
                .with_padding(PaddingConfig2d::Explicit(
                    padding[0], padding[1], padding[0], padding[1],
                ))
                .with_bias(bias)
                .init::<CpuTrain>(&device);
            CpuTrain::seed(&device, 3);
            let x = Tensor::<CpuTrain, 4>::random([11, 5, 6, 9], Distribution::Default, &device);
            assert!(
                Geometry::of(&conv, x.dims()).is_some(),
                "the case takes the im2col path"
            );
            let ours = run(&conv, &x, true);
            let burns = run(&conv, &x, false);
            let case =
                format!("kernel {kernel:?} stride {stride:?} dilation {dilation:?} bias {bias}");
            assert_close(&ours[0], &burns[0], 2e-5, &format!("output, {case}"));
            assert_close(
                &ours[1],
                &burns[1],
                2e-5,
                &format!("input gradient, {case}"),
            );
            assert_close(
                &ours[2],
                &burns[2],
                2e-5,
                &format!("weight gradient, {case}"),
            );
            assert_eq!(ours[3].len(), if bias { 6 } else { 0 }, "{case}");
            assert_close(&ours[3], &burns[3], 2e-5, &format!("bias gradient, {case}"));

            // The inference backend takes the same path and gives the same output.
            let plain = Conv2d::<Flex> {
                weight: burn::module::Param::from_tensor(conv.weight.val().inner()),
                bias: conv
                    .bias
                    .as_ref()
                    .map(|b| burn::module::Param::from_tensor(b.val().inner())),
                stride: conv.stride,
                kernel_size: conv.kernel_size,
                dilation: conv.dilation,
                groups: 1,
                padding: conv.padding.clone(),
            };
            let inference: Vec<f32> = forward(&plain, x.clone().inner())
                .into_data()
                .iter::<f32>()
                .collect();
            assert_eq!(inference, ours[0], "inference output, {case}");
        }
    }

    #[test]
    fn weight_gradient_does_not_depend_on_the_thread_count() {
        let device = Default::default();
        let conv = Conv2dConfig::new([4, 8], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init::<CpuTrain>(&device);
        CpuTrain::seed(&device, 5);
        let x = Tensor::<CpuTrain, 4>::random([13, 4, 10, 10], Distribution::Default, &device);
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool")
                .install(|| run(&conv, &x, true))
        };
        let one = on(1);
        for threads in [2, 3, 7] {
            assert_eq!(on(threads), one, "{threads} threads");
        }
    }

    #[test]
    fn gemm_split_over_threads_gives_the_serial_result() {
        let (m, k, n) = (64, 576, 3136);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1013) as f32 / 506.0 - 1.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 997) as f32 / 498.0 - 1.0)
            .collect();
        let mut serial = vec![0f32; m * n];
        matmul(&mut serial, &a, false, &b, false, [m, k, n], false, 1);
        for threads in [2, 3, 8] {
            let mut split = vec![0f32; m * n];
            matmul(&mut split, &a, false, &b, false, [m, k, n], false, threads);
            assert!(split == serial, "{threads} threads");
        }
    }

    #[test]
    fn other_convolutions_take_burns_path() {
        let device = Default::default();
        let x = [2, 4, 8, 8];
        let grouped = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(2)
            .with_bias(false)
            .init::<CpuTrain>(&device);
        let asymmetric = Conv2dConfig::new([4, 4], [2, 2])
            .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1))
            .with_bias(false)
            .init::<CpuTrain>(&device);
        let ndarray = Conv2dConfig::new([4, 4], [3, 3])
            .with_bias(false)
            .init::<burn::backend::NdArray>(&Default::default());
        assert!(Geometry::of(&grouped, x).is_none());
        assert!(Geometry::of(&asymmetric, x).is_none());
        assert!(Geometry::of(&ndarray, x).is_none());
    }
}
