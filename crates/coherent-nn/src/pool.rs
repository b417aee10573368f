//! Pooling layers: max and average pooling over square windows, and
//! global average pooling. They have no parameters, so they only route gradients.

use crate::act::{Act, CpuTape};
use crate::layer::{fixed_len, Layer};
use crate::simd::wide;
use crate::spare;
use crate::Activation;
use rayon::prelude::*;
use std::sync::Arc;

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value (its gradient goes to the first largest position).
    Max,
    /// The mean value (its gradient is spread evenly).
    Avg,
}

/// Pooling over `kernel x kernel` windows moved by `stride`, channel by channel. A kernel
/// equal to the input's height and width is global pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Max or average.
    pub kind: PoolKind,
    /// Channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Window size.
    pub kernel: usize,
    /// Window step.
    pub stride: usize,
}

impl Pool2d {
    /// Global average pooling of a `channels x height x width` input.
    pub fn global_avg(channels: usize, height: usize, width: usize) -> Pool2d {
        Pool2d {
            kind: PoolKind::Avg,
            channels,
            height,
            width,
            kernel: height.max(width),
            stride: 1,
        }
    }

    fn window(&self) -> (usize, usize) {
        (self.kernel.min(self.height), self.kernel.min(self.width))
    }

    /// Output height.
    pub fn out_height(&self) -> usize {
        (self.height - self.window().0) / self.stride + 1
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        (self.width - self.window().1) / self.stride + 1
    }

    /// The same pooling of one channel.
    pub(crate) fn plane(&self) -> Pool2d {
        Pool2d {
            channels: 1,
            ..*self
        }
    }

    /// Features of one input example.
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Features of one output example.
    pub fn output_len(&self) -> usize {
        self.channels * self.out_height() * self.out_width()
    }

    /// Calls `f(output index, input index)` for every input position of every window of one
    /// example, window by window.
    fn for_each_window(&self, mut f: impl FnMut(usize, usize)) {
        let (kh, kw) = self.window();
        let (oh, ow) = (self.out_height(), self.out_width());
        for c in 0..self.channels {
            for i in 0..oh {
                for j in 0..ow {
                    let o = (c * oh + i) * ow + j;
                    for a in 0..kh {
                        let row =
                            (c * self.height + i * self.stride + a) * self.width + j * self.stride;
                        for b in 0..kw {
                            f(o, row + b);
                        }
                    }
                }
            }
        }
    }

    /// The largest value of every window of one example `xe` into `ye`, and where it is (the
    /// first largest, row by row, as an index into `xe`) into `ae`: one output row at a time,
    /// straight from the rows of its windows.
    #[inline(always)]
    pub(crate) fn max_windows(&self, xe: &[f32], ye: &mut [f32], ae: &mut [u32]) {
        let (kh, kw) = self.window();
        let (ow, w, s) = (self.out_width(), self.width, self.stride);
        let tops = (0..self.channels)
            .flat_map(|c| (0..self.out_height()).map(move |i| (c * self.height + i * s) * w));
        for ((ys, as_), top) in ye
            .chunks_exact_mut(ow)
            .zip(ae.chunks_exact_mut(ow))
            .zip(tops)
        {
            if (kh, kw) == (2, 2) {
                max_pairs(
                    (&xe[top..top + w], &xe[top + w..top + 2 * w]),
                    s,
                    top,
                    ys,
                    as_,
                );
                continue;
            }
            for (j, (y, a)) in ys.iter_mut().zip(as_.iter_mut()).enumerate() {
                let first = top + j * s;
                let (mut best, mut at) = (xe[first], first);
                for row in (0..kh).map(|r| first + r * w) {
                    for (b, &v) in xe[row..row + kw].iter().enumerate() {
                        if v > best {
                            (best, at) = (v, row + b);
                        }
                    }
                }
                (*y, *a) = (best, at as u32);
            }
        }
    }

    /// Forward pass: outputs, and for max pooling the index of the winner of every window.
    fn run(&self, x: &[f32], rows: usize, out: &mut Vec<f32>, argmax: &mut Vec<u32>) {
        let (n_in, n_out) = (self.input_len(), self.output_len());
        let (kh, kw) = self.window();
        out.clear();
        argmax.clear();
        match self.kind {
            PoolKind::Max => {
                out.resize(rows * n_out, 0.0);
                argmax.resize(rows * n_out, 0);
                out.par_chunks_mut(n_out)
                    .zip(argmax.par_chunks_mut(n_out))
                    .zip(x.par_chunks(n_in))
                    .for_each(|((ye, ae), xe)| {
                        wide(
                            #[inline(always)]
                            || self.max_windows(xe, ye, ae),
                        )
                    });
            }
            PoolKind::Avg => {
                out.resize(rows * n_out, 0.0);
                let scale = 1.0 / (kh * kw) as f32;
                out.par_chunks_mut(n_out)
                    .zip(x.par_chunks(n_in))
                    .for_each(|(ye, xe)| {
                        self.for_each_window(|o, i| ye[o] += xe[i]);
                        ye.iter_mut().for_each(|v| *v *= scale);
                    });
            }
        }
    }
}

impl Layer for Pool2d {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        fixed_len(input, self.input_len(), self.output_len())
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let (mut out, mut argmax) = (Vec::new(), Vec::new());
        self.run(&x.data, x.rows, &mut out, &mut argmax);
        self.record(x, input_needs_grad, out, argmax)
    }

    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        self.run(x, rows, out, &mut Vec::new());
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Pool2d {
    /// Records the pass on `x` whose outputs are `out` and, for max pooling, whose winners
    /// are `argmax` (see [`Pool2d::max_windows`]).
    pub(crate) fn record(
        &self,
        x: Act<CpuTape>,
        input_needs_grad: bool,
        out: Vec<f32>,
        argmax: Vec<u32>,
    ) -> Act<CpuTape> {
        let pool = *self;
        x.record(
            Arc::new(out),
            self.output_len(),
            input_needs_grad,
            move |dy, dx| {
                let Some(dx) = dx else { return };
                let (n_in, n_out) = (pool.input_len(), pool.output_len());
                match pool.kind {
                    PoolKind::Max => dx
                        .par_chunks_mut(n_in)
                        .zip(dy.par_chunks(n_out).zip(argmax.par_chunks(n_out)))
                        .for_each(|(de, (ge, ae))| {
                            for (&d, &i) in ge.iter().zip(ae) {
                                de[i as usize] += d;
                            }
                        }),
                    PoolKind::Avg => {
                        let (kh, kw) = pool.window();
                        let scale = 1.0 / (kh * kw) as f32;
                        dx.par_chunks_mut(n_in)
                            .zip(dy.par_chunks(n_out))
                            .for_each(|(de, ge)| {
                                pool.for_each_window(|o, i| de[i] += ge[o] * scale)
                            });
                    }
                }
            },
        )
    }

    /// Records a max pool (windows that do not overlap) whose outputs are `out` and whose
    /// winners are `argmax`, on the output `x` of a layer whose activation `f` it takes over in
    /// the backward pass: it writes the gradient of the layer's pre-activation values, each
    /// window's gradient through `f`'s derivative at the window's largest value and zeros
    /// elsewhere. That is, bit for bit, what this pool's backward pass into zeros and then the
    /// activation's would give, as no value is the winner of two windows.
    ///
    /// `x` must have this pool as its only consumer, so that the pool writes its gradient.
    pub(crate) fn record_before_activation(
        &self,
        x: Act<CpuTape>,
        out: Vec<f32>,
        argmax: Vec<u32>,
        f: Option<Activation>,
    ) -> Act<CpuTape> {
        let (n_in, n_out) = (self.input_len(), self.output_len());
        let out = Arc::new(out);
        let y = out.clone();
        x.then(out, n_out, true, move |dy, dx| {
            let Some(dx) = dx else { return };
            dx.write_or_add(|dx, first| {
                debug_assert!(first, "the pooled layer's output has another consumer");
                dx.par_chunks_mut(n_in)
                    .zip(dy.par_chunks(n_out))
                    .zip(argmax.par_chunks(n_out).zip(y.par_chunks(n_out)))
                    .for_each(|((de, ge), (ae, ye))| {
                        if first {
                            de.fill(0.0);
                        }
                        wide(
                            #[inline(always)]
                            || add_at_winners(f, de, (ge, ae, ye)),
                        )
                    })
            });
            spare::recycle(dy);
        })
    }
}

/// Outputs of a pool whose gradients [`add_at_winners`] takes through the activation's
/// derivative at once: a run small enough for the nearest cache, long enough for vectors.
const RUN: usize = 64;

/// `de[a_k] = f'(y_k) (de[a_k] + g_k)` for every output `k` of a pool whose windows do not
/// overlap (so that no two outputs share a winner `a_k`): the derivative is taken over runs of
/// [`RUN`] outputs (vectorised) between their gather and their scatter.
#[inline(always)]
fn add_at_winners(f: Option<Activation>, de: &mut [f32], (g, a, y): (&[f32], &[u32], &[f32])) {
    let mut sums = [0.0f32; RUN];
    for ((gs, ats), ys) in g.chunks(RUN).zip(a.chunks(RUN)).zip(y.chunks(RUN)) {
        let run = &mut sums[..gs.len()];
        for ((r, &d), &i) in run.iter_mut().zip(gs).zip(ats) {
            *r = de[i as usize] + d;
        }
        if let Some(f) = f {
            f.backprop_from_output(ys, run);
        }
        for (&r, &i) in run.iter().zip(ats) {
            de[i as usize] = r;
        }
    }
}

/// The largest of every 2x2 window on the two input rows `(r0, r1)` (windows `stride` apart)
/// into `ys`, and where it is (as an index past `top`, where `r0` starts) into `as_`: the first
/// largest, as the general walk finds it. Windows side by side (stride 2) are compared without
/// branches, several at a time.
#[inline(always)]
fn max_pairs(
    (r0, r1): (&[f32], &[f32]),
    stride: usize,
    top: usize,
    ys: &mut [f32],
    as_: &mut [u32],
) {
    let w = r0.len();
    if stride == 2 {
        let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
        let outputs = ys.iter_mut().zip(as_.iter_mut());
        for (k, ((y, a), (p0, p1))) in outputs.zip(windows).enumerate() {
            let k = (top + 2 * k) as u32;
            let (mut best, mut at) = (p0[0], k);
            for (v, i) in [
                (p0[1], k + 1),
                (p1[0], k + w as u32),
                (p1[1], k + w as u32 + 1),
            ] {
                let better = v > best;
                best = if better { v } else { best };
                at = if better { i } else { at };
            }
            (*y, *a) = (best, at);
        }
        return;
    }
    for (j, (y, a)) in ys.iter_mut().zip(as_.iter_mut()).enumerate() {
        let k = j * stride;
        let (mut best, mut at) = (r0[k], k);
        for (v, i) in [(r0[k + 1], k + 1), (r1[k], w + k), (r1[k + 1], w + k + 1)] {
            if v > best {
                (best, at) = (v, i);
            }
        }
        (*y, *a) = (best, (top + at) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_average_pooling_match_direct_computation() {
        // one example, 1 channel, 4 x 5, 2 x 2 windows, stride 2 -> 2 x 2
        let x: Vec<f32> = (0..20).map(|i| ((i * 7) % 11) as f32).collect();
        let p = Pool2d {
            kind: PoolKind::Max,
            channels: 1,
            height: 4,
            width: 5,
            kernel: 2,
            stride: 2,
        };
        let mut out = Vec::new();
        p.forward_slice(&x, 1, &mut out);
        let at = |r: usize, c: usize| x[r * 5 + c];
        let want: Vec<f32> = [(0, 0), (0, 2), (2, 0), (2, 2)]
            .iter()
            .map(|&(r, c)| {
                at(r, c)
                    .max(at(r, c + 1))
                    .max(at(r + 1, c))
                    .max(at(r + 1, c + 1))
            })
            .collect();
        assert_eq!(out, want);
        let a = Pool2d {
            kind: PoolKind::Avg,
            ..p
        };
        a.forward_slice(&x, 1, &mut out);
        assert_eq!(out[3], (at(2, 2) + at(2, 3) + at(3, 2) + at(3, 3)) / 4.0);
        let g = Pool2d::global_avg(2, 3, 3);
        let x: Vec<f32> = (0..18).map(|i| i as f32).collect();
        g.forward_slice(&x, 1, &mut out);
        assert_eq!(out, vec![4.0, 13.0]);
    }

    /// Every window's largest value and the index of its first largest (row by row), by
    /// looping over every position of every window.
    fn max_by_definition(p: &Pool2d, xe: &[f32]) -> (Vec<f32>, Vec<u32>) {
        let (mut ys, mut at) = (Vec::new(), Vec::new());
        for c in 0..p.channels {
            for i in 0..p.out_height() {
                for j in 0..p.out_width() {
                    let mut best: Option<(f32, usize)> = None;
                    for a in 0..p.kernel {
                        for b in 0..p.kernel {
                            let k = (c * p.height + i * p.stride + a) * p.width + j * p.stride + b;
                            if best.is_none_or(|(v, _)| xe[k] > v) {
                                best = Some((xe[k], k));
                            }
                        }
                    }
                    let (v, k) = best.expect("a window has values");
                    ys.push(v);
                    at.push(k as u32);
                }
            }
        }
        (ys, at)
    }

    #[test]
    fn max_pooling_picks_the_first_largest_of_every_window() {
        // values from a few levels only, so that windows hold ties
        for (kernel, stride, (h, w)) in [
            (2, 2, (6, 8)),
            (2, 2, (5, 7)),
            (2, 1, (4, 5)),
            (3, 2, (7, 6)),
        ] {
            let p = Pool2d {
                kind: PoolKind::Max,
                channels: 3,
                height: h,
                width: w,
                kernel,
                stride,
            };
            let x: Vec<f32> = (0..2 * p.input_len())
                .map(|i| ((i * 37) % 5) as f32)
                .collect();
            let (mut out, mut argmax) = (Vec::new(), Vec::new());
            p.run(&x, 2, &mut out, &mut argmax);
            for e in 0..2 {
                let (ys, at) =
                    max_by_definition(&p, &x[e * p.input_len()..(e + 1) * p.input_len()]);
                let got = e * p.output_len()..(e + 1) * p.output_len();
                assert_eq!(out[got.clone()], ys[..], "{kernel} {stride} {h}x{w}");
                assert_eq!(argmax[got], at[..], "{kernel} {stride} {h}x{w}");
            }
        }
    }
}
