//! The convolution as an op: forward pass of every example (unfold, then one matrix product
//! with the weights), and its backward pass on dfdx's tape (the input gradient `W^T G_i`
//! folded back by col2im; the trace records `U` and `G`).

use super::implicit::{self, with_scratch, Scratch};
use super::unfold::{col2im, im2col};
use super::{tile, Conv2d, ConvGeometry};
use crate::act::{Act, CpuTape};
use crate::kernels::{matmul_on, Layout, Mat};
use crate::spare;
use crate::Activation;
use rayon::prelude::*;
use std::sync::Arc;

/// Outputs of the examples `x` (one, or [`implicit::examples_per_slice`] where the tiles
/// run) into `y`, through the buffers `s`.
pub(super) fn examples(conv: &Conv2d, x: &[f32], s: &mut Scratch, y: &mut [f32]) {
    let g = conv.geom;
    let (t, kk, co) = g.dims();
    let w = &conv.params[..co * kk];
    if tile::available() {
        implicit::forward_many((&g, w), x, s, y, false);
    } else {
        s.unfolded.resize(t * kk, 0.0);
        unfolded_forward(&g, w, x, &mut s.unfolded, y);
    }
    if conv.bias {
        for y in y.chunks_exact_mut(co * t) {
            for (row, b) in y.chunks_exact_mut(t).zip(&conv.params[co * kk..]) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    }
    if let Some(f) = conv.activation {
        f.apply_in_place(y);
    }
}

/// `Y = W U` of one example `x` into `y`, through its whole unfolding `u` (filled here).
fn unfolded_forward(g: &ConvGeometry, w: &[f32], x: &[f32], u: &mut [f32], y: &mut [f32]) {
    let (t, kk, co) = g.dims();
    im2col(g, x, u);
    matmul_on(
        (co, kk, t),
        Mat {
            data: w,
            layout: Layout::Normal,
        },
        Mat {
            data: u,
            layout: Layout::Normal,
        },
        y,
        false,
        false,
    );
}

/// Forward pass of `rows` examples into `out`, on plain slices (one unfolded example per
/// thread at a time); the pass on the tape runs it too.
pub(super) fn on_slices(conv: &Conv2d, x: &[f32], rows: usize, out: &mut Vec<f32>) {
    let g = conv.geom;
    out.resize(rows * g.output_len(), 0.0);
    let m = examples_per_task(&g);
    out.par_chunks_mut(m * g.output_len())
        .zip(x.par_chunks(m * g.input_len()))
        .for_each(|(y, x)| with_scratch(|s| examples(conv, x, s, y)));
}

/// How many examples one task of the forward pass computes at once: one, or where the tiles
/// run [`implicit::examples_per_slice`].
pub(super) fn examples_per_task(g: &ConvGeometry) -> usize {
    if tile::available() {
        implicit::examples_per_slice(g)
    } else {
        1
    }
}

/// Forward pass recorded on the tape.
pub(super) fn on_tape(conv: &Conv2d, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
    let rows = x.rows;
    let out = {
        let mut out = conv.output.lock().expect("conv output lock");
        on_slices(conv, &x.data, rows, Arc::make_mut(&mut out));
        out.clone()
    };
    let activation = conv.activation.map(|f| (f, out.clone()));
    record(conv, x, input_needs_grad, out, activation)
}

/// Records the pass on `x` whose output is `out` on the tape. The backward pass takes the
/// output's gradient through `activation`'s derivative, read from the output it holds; with
/// `None` the gradient that arrives is already that of the pre-activation values.
pub(super) fn record(
    conv: &Conv2d,
    x: Act<CpuTape>,
    input_needs_grad: bool,
    out: Arc<Vec<f32>>,
    activation: Option<(Activation, Arc<Vec<f32>>)>,
) -> Act<CpuTape> {
    let rows = x.rows;
    let input = x.data.clone();
    let (trace, params, geom, bias) = (
        conv.trace.clone(),
        conv.params.clone(),
        conv.geom,
        conv.bias,
    );
    x.then(
        out,
        geom.output_len(),
        input_needs_grad,
        move |mut dy, dx| {
            let mut tr = trace.write().expect("conv trace lock");
            let tr = &mut *tr;
            let act = activation.as_ref().map(|(f, y)| (*f, y.as_slice()));
            crate::activation::pre_activation_grad(act, &mut dy);
            spare::recycle(std::mem::replace(&mut tr.delta, dy));
            tr.record(input, geom, rows, bias);
            if let Some(dx) = dx {
                let (t, kk, co) = geom.dims();
                let w = &params[..co * kk];
                let adjoint = Adjoint::of(&geom, w);
                let m = adjoint
                    .as_ref()
                    .map_or(1, |a| implicit::examples_per_slice(&a.geom));
                dx.write_or_add(|dx, first| {
                    dx.par_chunks_mut(m * geom.input_len())
                        .zip(tr.delta.par_chunks(m * co * t))
                        .for_each(|(dx, gi)| {
                            with_scratch(|s| match &adjoint {
                                Some(a) => {
                                    let a = (&a.geom, &a.weights[..]);
                                    implicit::forward_many(a, gi, s, dx, !first)
                                }
                                None => {
                                    if first {
                                        dx.fill(0.0);
                                    }
                                    input_grad(&geom, w, gi, s, dx)
                                }
                            })
                        })
                });
            }
            tr.release_if_sum_only();
        },
    )
}

/// The convolution whose output is a stride-1 convolution's input gradient (see
/// [`ConvGeometry::adjoint`]): where the tiles run, the input gradient is its forward pass,
/// whose products run over the output channels and the kernel (a long sum held in registers)
/// instead of the output channels alone.
struct Adjoint {
    geom: ConvGeometry,
    weights: Vec<f32>,
}

impl Adjoint {
    /// The adjoint of the convolution `g` with weights `w`, where the tiles run and it exists.
    fn of(g: &ConvGeometry, w: &[f32]) -> Option<Adjoint> {
        let geom = g.adjoint().filter(|_| tile::available())?;
        Some(Adjoint {
            geom,
            weights: g.adjoint_weights(w),
        })
    }
}

/// Adds the input gradient of one example with output gradients `gi` into `dx`.
fn input_grad(g: &ConvGeometry, w: &[f32], gi: &[f32], s: &mut Scratch, dx: &mut [f32]) {
    if tile::available() {
        return implicit::input_grad(g, w, gi, s, dx);
    }
    let (t, kk, co) = g.dims();
    s.unfolded.resize(t * kk, 0.0);
    let du = &mut s.unfolded;
    matmul_on(
        (kk, co, t),
        Mat {
            data: w,
            layout: Layout::Transposed,
        },
        Mat {
            data: gi,
            layout: Layout::Normal,
        },
        du,
        false,
        false,
    );
    col2im(g, du, dx);
}

#[cfg(test)]
mod tests {
    use super::super::definition::input_grad as input_grad_by_definition;
    use super::super::ConvGeometry;
    use super::*;
    use crate::{Init, Layer};
    use coherent_core::Rng;

    /// Direct convolution by loops over every index: PyTorch's `conv2d` (a cross-correlation
    /// with weights `[C_out, C_in, k, k]`), so the flat weights are `nn.Conv2d`'s.
    fn naive(g: &ConvGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
        let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
        let mut y = vec![0.0; g.output_len()];
        for o in 0..g.out_channels {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b.map_or(0.0, |b| b[o]);
                    for c in 0..g.in_channels {
                        for ki in 0..k {
                            for kj in 0..k {
                                let h = (i * g.stride + ki) as isize - g.padding as isize;
                                let v = (j * g.stride + kj) as isize - g.padding as isize;
                                if h >= 0
                                    && v >= 0
                                    && (h as usize) < g.height
                                    && (v as usize) < g.width
                                {
                                    s += w[((o * g.in_channels + c) * k + ki) * k + kj]
                                        * x[(c * g.height + h as usize) * g.width + v as usize];
                                }
                            }
                        }
                    }
                    y[(o * oh + i) * ow + j] = s;
                }
            }
        }
        y
    }

    #[test]
    fn forward_matches_direct_loops_with_stride_and_padding() {
        for (stride, padding) in [(1, 0), (1, 1), (2, 1), (2, 0), (3, 2)] {
            let g = ConvGeometry::new((3, 7, 6), 4, 3, stride, padding);
            let mut rng = Rng::new(1);
            let conv = Conv2d::new(g, true, Init::Uniform, &mut rng);
            let x: Vec<f32> = (0..2 * g.input_len())
                .map(|_| rng.normal() as f32)
                .collect();
            let mut y = Vec::new();
            conv.forward_slice(&x, 2, &mut y);
            let (w, b) = conv.params().split_at(g.out_channels * g.patch());
            for e in 0..2 {
                let want = naive(
                    &g,
                    &x[e * g.input_len()..(e + 1) * g.input_len()],
                    w,
                    Some(b),
                );
                let got = &y[e * g.output_len()..(e + 1) * g.output_len()];
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "stride {stride} padding {padding}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn forward_matches_direct_loops_on_rows_that_are_not_whole_vectors() {
        // 14x14, 8x8 and 8x10 outputs (the last with a partial last slice) with channels
        // enough for positions in blocks of 16; the same 14x14 with few (wide positions);
        // 9-wide rows with an 11x11 kernel, whose blocks span too far (wide positions)
        for (shape, co, k, padding) in [
            ((2, 14, 14), 40, 5, 2),
            ((3, 8, 8), 64, 3, 1),
            ((2, 10, 12), 48, 3, 0),
            ((2, 14, 14), 5, 5, 2),
            ((1, 9, 9), 40, 11, 5),
        ] {
            let g = ConvGeometry::new(shape, co, k, 1, padding);
            let mut rng = Rng::new(2);
            let conv = Conv2d::new(g, true, Init::Uniform, &mut rng);
            let x: Vec<f32> = (0..g.input_len()).map(|_| rng.normal() as f32).collect();
            let mut y = Vec::new();
            conv.forward_slice(&x, 1, &mut y);
            let (w, b) = conv.params().split_at(g.out_channels * g.patch());
            let want = naive(&g, &x, w, Some(b));
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn the_adjoint_convolution_adds_the_input_gradient() {
        let mut rng = Rng::new(3);
        for g in [
            ConvGeometry::new((3, 7, 6), 4, 3, 1, 1),
            ConvGeometry::new((3, 12, 10), 5, 3, 1, 0),
            ConvGeometry::new((2, 9, 11), 17, 5, 1, 2),
            ConvGeometry::new((4, 16, 16), 3, 3, 1, 1),
            ConvGeometry::new((2, 6, 6), 3, 1, 1, 0),
        ] {
            if !tile::available() {
                return; // the input gradient takes the other path
            }
            let mut normal = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>();
            let (w, gi) = (normal(g.out_channels * g.patch()), normal(g.output_len()));
            let a = Adjoint::of(&g, &w).expect("stride 1");
            assert_eq!(a.geom.output_len(), g.input_len(), "{g:?}");
            let mut dx = vec![0.5; g.input_len()];
            with_scratch(|s| implicit::forward((&a.geom, &a.weights), &gi, s, &mut dx, true));
            let want = input_grad_by_definition(&g, &w, &gi);
            for (got, want) in dx.iter().zip(&want) {
                assert!(
                    (got - 0.5 - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{g:?}: {got} vs {want}"
                );
            }
        }
    }
}
