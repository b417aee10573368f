//! 2-D convolution `y = f(W * x + b)` (im2col + matrix products), with an optional fused
//! activation, as a custom op on dfdx's tape.
//!
//! Per example `i`, the input is unfolded into `U_i` (`T` output positions x `K = C_in k k`
//! patch values, stored transposed as `K x T`) and the output is `Y_i = W U_i^T + b`
//! (`C_out x T`, so rows stay in NCHW order). With `G_i` the gradient of the loss with respect to the pre-activation output
//! (`C_out x T`), the per-example weight gradient is `g_i = G_i U_i` (`C_out x K`) and the
//! bias gradient the sum of `G_i` over positions. Squared norms use either the "ghost" form
//! `|G_i U_i|^2 = <U_i U_i^T, G_i^T G_i>` (cost `T^2 (K + C_out)`) or the materialised `g_i`
//! (cost `C_out T K`), whichever is cheaper (BRIEF section 4; Li et al. 2022, "ghost clipping").

use crate::kernels::{matmul, matmul_on, Layout};
use crate::trace::{Act, LayerGrads};
use crate::{Activation, Init};
use coherent_core::Rng;
use dfdx::prelude::{Cpu, PutTape, SplitTape, Tape};
use rayon::prelude::*;
use std::sync::{Arc, Mutex, RwLock};

/// Shapes of a convolution: square kernel, equal stride and padding on both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub in_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl ConvGeometry {
    /// Output height.
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }
    /// Output width.
    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }
    /// Output positions `T`.
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }
    /// Values of one patch `K = C_in k k`.
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }
    /// Features of one input example.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }
    /// Features of one output example.
    pub fn output_len(&self) -> usize {
        self.out_channels * self.positions()
    }
    /// Whether the kernel fits the padded input.
    pub fn is_valid(&self) -> bool {
        self.kernel > 0
            && self.stride > 0
            && self.height + 2 * self.padding >= self.kernel
            && self.width + 2 * self.padding >= self.kernel
    }
}

/// Range of output columns `ow` whose input column `ow * stride + offset - padding` lies
/// inside `0..len`.
fn valid(
    out: usize,
    stride: usize,
    offset: usize,
    padding: usize,
    len: usize,
) -> std::ops::Range<usize> {
    let lo = padding.saturating_sub(offset).div_ceil(stride);
    let hi = if len + padding > offset {
        (len + padding - offset - 1) / stride + 1
    } else {
        0
    };
    lo.min(out)..hi.min(out).max(lo.min(out))
}

/// Unfolds one example `x` (`C_in x H x W`) into `u` (`K x T`: row `(c, ki, kj)` holds that
/// patch value at every output position), the layout in which rows are copied contiguously.
pub fn im2col(g: &ConvGeometry, x: &[f32], u: &mut [f32]) {
    let (k, s, pad) = (g.kernel, g.stride, g.padding);
    let (oh, ow) = (g.out_height(), g.out_width());
    let t = oh * ow;
    for c in 0..g.in_channels {
        let plane = &x[c * g.height * g.width..(c + 1) * g.height * g.width];
        for ki in 0..k {
            let rows = valid(oh, s, ki, pad, g.height);
            for kj in 0..k {
                let cols = valid(ow, s, kj, pad, g.width);
                let row = &mut u[((c * k + ki) * k + kj) * t..][..t];
                for (r, out) in row.chunks_exact_mut(ow).enumerate() {
                    if !rows.contains(&r) {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &plane[(r * s + ki - pad) * g.width..][..g.width];
                    out[..cols.start].fill(0.0);
                    out[cols.end..].fill(0.0);
                    if s == 1 {
                        let start = cols.start + kj - pad;
                        out[cols.clone()].copy_from_slice(&line[start..start + cols.len()]);
                    } else {
                        for q in cols.clone() {
                            out[q] = line[q * s + kj - pad];
                        }
                    }
                }
            }
        }
    }
}

/// Folds `du` (`K x T`) back onto one example, adding into `dx` (`C_in x H x W`): the
/// adjoint of [`im2col`].
pub fn col2im(g: &ConvGeometry, du: &[f32], dx: &mut [f32]) {
    let (k, s, pad) = (g.kernel, g.stride, g.padding);
    let (oh, ow) = (g.out_height(), g.out_width());
    let t = oh * ow;
    for c in 0..g.in_channels {
        let plane = &mut dx[c * g.height * g.width..(c + 1) * g.height * g.width];
        for ki in 0..k {
            let rows = valid(oh, s, ki, pad, g.height);
            for kj in 0..k {
                let cols = valid(ow, s, kj, pad, g.width);
                let row = &du[((c * k + ki) * k + kj) * t..][..t];
                for r in rows.clone() {
                    let line = &mut plane[(r * s + ki - pad) * g.width..][..g.width];
                    let src = &row[r * ow..(r + 1) * ow];
                    if s == 1 {
                        let start = cols.start + kj - pad;
                        let dst = &mut line[start..start + cols.len()];
                        dst.iter_mut()
                            .zip(&src[cols.clone()])
                            .for_each(|(d, v)| *d += v);
                    } else {
                        for q in cols.clone() {
                            line[q * s + kj - pad] += src[q];
                        }
                    }
                }
            }
        }
    }
}

/// How per-example squared norms of a convolution are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormMethod {
    /// The cheaper of the two, by operation count.
    #[default]
    Auto,
    /// `<U_i U_i^T, G_i^T G_i>`, without materialising `g_i`.
    Ghost,
    /// `|G_i U_i|^2` from the materialised gradient.
    Materialize,
}

/// A 2-D convolution layer. Parameters: the weights (`C_out x C_in x k x k`, as PyTorch lays
/// them out) then the bias (`C_out`).
#[derive(Debug)]
pub struct Conv2d {
    geom: ConvGeometry,
    bias: bool,
    activation: Option<Activation>,
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<ConvTrace>>,
    output: Mutex<Arc<Vec<f32>>>,
    cols: Mutex<Arc<Vec<f32>>>,
}

impl Conv2d {
    /// A layer of geometry `geom`, initialised with `init` (fan-in `C_in k k`).
    pub fn new(geom: ConvGeometry, bias: bool, init: Init, rng: &mut Rng) -> Conv2d {
        assert!(geom.is_valid(), "invalid convolution {geom:?}");
        let weights = geom.out_channels * geom.patch();
        let mut params = vec![0.0; weights + if bias { geom.out_channels } else { 0 }];
        let (w, b) = params.split_at_mut(weights);
        init.fill(w, b, geom.patch(), rng);
        Conv2d {
            geom,
            bias,
            activation: None,
            params: Arc::new(params),
            trace: Arc::default(),
            output: Mutex::default(),
            cols: Mutex::default(),
        }
    }

    /// The same layer followed by `activation`.
    pub fn with_activation(mut self, activation: Activation) -> Conv2d {
        self.activation = Some(activation);
        self
    }

    /// Chooses how per-example norms are computed (tests and benchmarks compare the two).
    pub fn with_norm_method(self, method: NormMethod) -> Conv2d {
        self.trace.write().expect("conv trace lock").method = method;
        self
    }

    /// The geometry.
    pub fn geometry(&self) -> ConvGeometry {
        self.geom
    }

    /// Whether the layer has a bias.
    pub fn has_bias(&self) -> bool {
        self.bias
    }

    /// The fused activation, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.activation
    }

    /// The flat parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Mutable flat parameters. Copies only if a tape still holds the old values.
    pub fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    /// The trace of the last backward pass.
    pub fn trace(&self) -> std::sync::RwLockWriteGuard<'_, ConvTrace> {
        self.trace.write().expect("conv trace lock")
    }

    /// Lets go of the previous pass's buffers.
    pub fn release_input(&self, empty: &Arc<Vec<f32>>) {
        self.trace().cols = empty.clone();
    }

    /// Output of one example `x` into `y`, from its unfolded input `u` (filled here).
    fn example_forward(&self, x: &[f32], u: &mut [f32], y: &mut [f32]) {
        let g = self.geom;
        let (t, kk, co) = (g.positions(), g.patch(), g.out_channels);
        im2col(&g, x, u);
        let w = &self.params[..co * kk];
        matmul_on(
            co,
            kk,
            t,
            w,
            Layout::Normal,
            u,
            Layout::Normal,
            y,
            false,
            false,
        );
        if self.bias {
            for (row, b) in y.chunks_exact_mut(t).zip(&self.params[co * kk..]) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
        if let Some(f) = self.activation {
            f.apply_in_place(y);
        }
    }

    /// Forward pass of `rows` examples into `out`, keeping every unfolded input in `cols`
    /// (the backward pass and the per-example quantities need them).
    fn forward_into(&self, x: &[f32], rows: usize, cols: &mut Vec<f32>, out: &mut Vec<f32>) {
        let g = self.geom;
        cols.resize(rows * g.positions() * g.patch(), 0.0);
        out.resize(rows * g.output_len(), 0.0);
        out.par_chunks_mut(g.output_len())
            .zip(cols.par_chunks_mut(g.positions() * g.patch()))
            .zip(x.par_chunks(g.input_len()))
            .for_each(|((y, u), x)| self.example_forward(x, u, y));
    }

    /// Forward pass on plain slices (one unfolded example per thread at a time).
    pub fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let g = self.geom;
        out.resize(rows * g.output_len(), 0.0);
        out.par_chunks_mut(g.output_len())
            .zip(x.par_chunks(g.input_len()))
            .for_each_init(
                || vec![0.0; g.positions() * g.patch()],
                |u, (y, x)| self.example_forward(x, u, y),
            );
    }

    /// Forward pass recorded on the tape.
    pub fn forward<T: Tape<f32, Cpu>>(&self, x: Act<T>, input_needs_grad: bool) -> Act<T> {
        let rows = x.rows;
        let (out, cols) = {
            let mut out = self.output.lock().expect("conv output lock");
            let mut cols = self.cols.lock().expect("conv cols lock");
            self.forward_into(
                &x.data,
                rows,
                Arc::make_mut(&mut cols),
                Arc::make_mut(&mut out),
            );
            (out.clone(), cols.clone())
        };
        let dev = x.tensor.device().clone();
        let (x_tensor, tape) = x.tensor.split_tape();
        let mut y = Act::shared(&dev, out, rows, self.geom.output_len(), T::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let y_id = y_tensor.clone();
        let (trace, params, geom, bias) = (
            self.trace.clone(),
            self.params.clone(),
            self.geom,
            self.bias,
        );
        let activation = self.activation;
        let output = activation.map(|_| y.data.clone());
        y_tape.add_backward_op(move |grads| {
            let mut tr = trace.write().expect("conv trace lock");
            let tr = &mut *tr;
            let dy = grads.get_or_alloc_mut(&y_id)?;
            let act = activation.zip(output.as_deref().map(Vec::as_slice));
            crate::activation::pre_activation_grad(act, dy, &mut tr.delta);
            (tr.cols, tr.geom, tr.rows, tr.bias) = (cols, geom, rows, bias);
            tr.compute_sum();
            if input_needs_grad {
                let dx = grads.get_or_alloc_mut(&x_tensor)?;
                let (t, kk, co) = (geom.positions(), geom.patch(), geom.out_channels);
                let w = &params[..co * kk];
                dx.par_chunks_mut(geom.input_len())
                    .zip(tr.delta.par_chunks(co * t))
                    .for_each_init(
                        || vec![0.0; t * kk],
                        |du, (dx, gi)| {
                            matmul_on(
                                kk,
                                co,
                                t,
                                w,
                                Layout::Transposed,
                                gi,
                                Layout::Normal,
                                du,
                                false,
                                false,
                            );
                            col2im(&geom, du, dx);
                        },
                    );
            }
            Ok(())
        });
        y.tensor = y_tensor.put_tape(tape.merge(y_tape));
        y
    }
}

/// What a convolution records in the backward pass: the unfolded inputs `U` (`rows x T x K`),
/// the pre-activation output gradients `G` (`rows x C_out x T`) and the summed gradient.
#[derive(Debug, Default)]
pub struct ConvTrace {
    /// Unfolded inputs of every example (`K x T` each).
    pub cols: Arc<Vec<f32>>,
    /// Output gradients, one `C_out x T` block per example.
    pub delta: Vec<f32>,
    /// Summed gradient: weights then bias.
    pub grad: Vec<f32>,
    /// Materialised per-example gradients (`rows x params`), for blocks.
    materialized: Vec<f32>,
    /// `|g_i|^2` of the weights (without the bias), from the backward pass.
    weight_norms: Vec<f32>,
    geom: ConvGeometry,
    rows: usize,
    bias: bool,
    method: NormMethod,
}

impl Default for ConvGeometry {
    fn default() -> ConvGeometry {
        ConvGeometry {
            in_channels: 1,
            height: 1,
            width: 1,
            out_channels: 1,
            kernel: 1,
            stride: 1,
            padding: 0,
        }
    }
}

impl ConvTrace {
    fn dims(&self) -> (usize, usize, usize) {
        (
            self.geom.positions(),
            self.geom.patch(),
            self.geom.out_channels,
        )
    }

    fn compute_sum(&mut self) {
        let (t, kk, co) = self.dims();
        let p = self.params();
        // dW = sum_i G_i U_i: per-thread partial sums of the per-example products, each
        // product materialised once, so its squared norm comes almost for free
        let mut norms = std::mem::take(&mut self.weight_norms);
        norms.resize(self.rows, 0.0);
        let this = &*self;
        let total = norms
            .par_iter_mut()
            .enumerate()
            .fold(
                || (vec![0.0f32; co * kk], vec![0.0f32; co * kk]),
                |(mut acc, mut gi_w), (i, norm)| {
                    let gi = &this.delta[i * co * t..(i + 1) * co * t];
                    let ui = &this.cols[i * t * kk..(i + 1) * t * kk];
                    matmul_on(
                        co,
                        t,
                        kk,
                        gi,
                        Layout::Normal,
                        ui,
                        Layout::Transposed,
                        &mut gi_w,
                        false,
                        false,
                    );
                    *norm = crate::kernels::sq_norm(&gi_w);
                    acc.iter_mut().zip(&gi_w).for_each(|(a, v)| *a += v);
                    (acc, gi_w)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(
                || vec![0.0; co * kk],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        self.weight_norms = norms;
        self.grad.resize(p, 0.0);
        let (gw, gb) = self.grad.split_at_mut(co * kk);
        gw.copy_from_slice(&total);
        if self.bias {
            gb.fill(0.0);
            for gi in self.delta.chunks_exact(co * t) {
                for (g, row) in gb.iter_mut().zip(gi.chunks_exact(t)) {
                    *g += row.iter().sum::<f32>();
                }
            }
        }
    }

    /// `g_i` of example `i` into `out` (`params` values).
    fn example(&self, i: usize, out: &mut [f32]) {
        let (t, kk, co) = self.dims();
        let gi = &self.delta[i * co * t..(i + 1) * co * t];
        let ui = &self.cols[i * t * kk..(i + 1) * t * kk];
        let (w, b) = out.split_at_mut(co * kk);
        matmul_on(
            co,
            t,
            kk,
            gi,
            Layout::Normal,
            ui,
            Layout::Transposed,
            w,
            false,
            false,
        );
        if self.bias {
            for (g, row) in b.iter_mut().zip(gi.chunks_exact(t)) {
                *g = row.iter().sum();
            }
        }
    }

    /// Whether the ghost form is cheaper than materialising.
    fn ghost(&self) -> bool {
        let (t, kk, co) = self.dims();
        match self.method {
            NormMethod::Auto => t * (kk + co) < co * kk,
            NormMethod::Ghost => true,
            NormMethod::Materialize => false,
        }
    }

    /// Materialises every example's gradient into `self.materialized`.
    fn materialize_all(&mut self) {
        let p = self.params();
        let mut m = std::mem::take(&mut self.materialized);
        m.resize(self.rows * p, 0.0);
        m.par_chunks_mut(p)
            .enumerate()
            .for_each(|(i, out)| self.example(i, out));
        self.materialized = m;
    }

    /// Prepares [`ConvTrace::block`].
    pub fn prepare_blocks(&mut self) {
        self.materialize_all();
    }

    /// Per-example values of parameters `coords`, coordinate-major (`out[c * rows + e]`).
    pub fn block(&self, coords: std::ops::Range<usize>, out: &mut [f32]) {
        let (b, p) = (self.rows, self.params());
        for (c, col) in coords.zip(out.chunks_exact_mut(b)) {
            for (e, x) in col.iter_mut().enumerate() {
                *x = self.materialized[e * p + c];
            }
        }
    }
}

impl LayerGrads for ConvTrace {
    fn batch(&self) -> usize {
        self.rows
    }

    fn params(&self) -> usize {
        let (_, kk, co) = self.dims();
        co * kk + if self.bias { co } else { 0 }
    }

    fn sq_norms(&mut self, out: &mut [f32]) {
        let (t, kk, co) = self.dims();
        let (p, ghost) = (self.params(), self.ghost());
        let this = &*self;
        out.par_iter_mut().enumerate().for_each_init(
            || (vec![0.0; if ghost { t * t } else { p }], vec![0.0; t * t]),
            |(a, b), (i, norm)| {
                if ghost {
                    let gi = &this.delta[i * co * t..(i + 1) * co * t];
                    let ui = &this.cols[i * t * kk..(i + 1) * t * kk];
                    matmul_on(
                        t,
                        kk,
                        t,
                        ui,
                        Layout::Transposed,
                        ui,
                        Layout::Normal,
                        a,
                        false,
                        false,
                    );
                    matmul_on(
                        t,
                        co,
                        t,
                        gi,
                        Layout::Transposed,
                        gi,
                        Layout::Normal,
                        b,
                        false,
                        false,
                    );
                    let mut s: f32 = a.iter().zip(b.iter()).map(|(x, y)| x * y).sum();
                    if this.bias {
                        s += gi
                            .chunks_exact(t)
                            .map(|row| row.iter().sum::<f32>().powi(2))
                            .sum::<f32>();
                    }
                    *norm = s;
                } else {
                    let gi = &this.delta[i * co * t..(i + 1) * co * t];
                    *norm = this.weight_norms[i];
                    if this.bias {
                        *norm += gi
                            .chunks_exact(t)
                            .map(|row| row.iter().sum::<f32>().powi(2))
                            .sum::<f32>();
                    }
                }
            },
        );
    }

    fn coord_sum_sq(&mut self, out: &mut [f32]) {
        let p = self.params();
        let this = &*self;
        let total = (0..self.rows)
            .into_par_iter()
            .fold(
                || (vec![0.0f32; p], vec![0.0f32; p]),
                |(mut acc, mut g), i| {
                    this.example(i, &mut g);
                    acc.iter_mut().zip(&g).for_each(|(a, v)| *a += v * v);
                    (acc, g)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(
                || vec![0.0; p],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        out.copy_from_slice(&total);
    }

    fn gram(&mut self, out: &mut [f32]) {
        self.materialize_all();
        let (b, p) = (self.rows, self.params());
        matmul(
            b,
            p,
            b,
            &self.materialized,
            Layout::Normal,
            &self.materialized,
            Layout::Transposed,
            out,
            false,
        );
    }

    fn group_sum(&mut self, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let rows: Vec<usize> = rows.collect();
        self.subset_sum(&rows, out);
    }

    fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]) {
        let mut g = vec![0.0; self.params()];
        out.fill(0.0);
        for &i in rows {
            self.example(i, &mut g);
            out.iter_mut().zip(&g).for_each(|(o, v)| *o += v);
        }
    }

    fn per_example(&mut self, out: &mut [f32]) {
        let p = self.params();
        out.par_chunks_mut(p)
            .enumerate()
            .for_each(|(i, o)| self.example(i, o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution by loops over every index.
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

    fn geom(stride: usize, padding: usize) -> ConvGeometry {
        ConvGeometry {
            in_channels: 3,
            height: 7,
            width: 6,
            out_channels: 4,
            kernel: 3,
            stride,
            padding,
        }
    }

    #[test]
    fn forward_matches_direct_loops_with_stride_and_padding() {
        for (stride, padding) in [(1, 0), (1, 1), (2, 1), (2, 0), (3, 2)] {
            let g = geom(stride, padding);
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
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), u> = <x, col2im(u)> for all x, u
        let g = geom(2, 1);
        let mut rng = Rng::new(2);
        let x: Vec<f32> = (0..g.input_len()).map(|_| rng.normal() as f32).collect();
        let u: Vec<f32> = (0..g.positions() * g.patch())
            .map(|_| rng.normal() as f32)
            .collect();
        let mut ux = vec![0.0; u.len()];
        im2col(&g, &x, &mut ux);
        let mut xu = vec![0.0; x.len()];
        col2im(&g, &u, &mut xu);
        let lhs: f32 = ux.iter().zip(&u).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&xu).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}
