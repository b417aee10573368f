//! What a dense layer records in its backward pass, and the exact per-example quantities that
//! follow from it: example `i`'s gradient is the outer product `g_i = Delta_i A_i^T` (and
//! `Delta_i` for the bias), so `|g_i|^2 = |Delta_i|^2 (|A_i|^2 + 1)`, `g_i . g_j = (Delta_i .
//! Delta_j)(A_i . A_j + 1)` and `sum_i g_i (.) g_i = (Delta (.) Delta)^T (A (.) A)` (the `+ 1`
//! and the bias terms only with a bias), without materialising any `g_i` (Goodfellow 2015,
//! "Efficient per-example gradient computations").

use crate::grads::LayerGrads;
use crate::kernels::{matmul, row_sq_norms, Layout, Mat};
use std::ops::Range;
use std::sync::Arc;

/// What a dense layer records in the backward pass: its input `A` (`rows x inputs`), its output
/// gradient `Delta` (`rows x outputs`) and the summed parameter gradient.
#[derive(Debug, Default)]
pub struct DenseTrace {
    /// Layer input, row-major.
    pub input: Arc<Vec<f32>>,
    /// Gradient of the summed loss with respect to the layer output, row-major.
    pub delta: Vec<f32>,
    /// Summed gradient `S`: weights (`outputs x inputs`) then bias.
    pub grad: Vec<f32>,
    /// `A^T` (`inputs x rows`) and `Delta^T` (`outputs x rows`), for coordinate blocks.
    transposed: (Vec<f32>, Vec<f32>),
    /// Scratch buffers of the per-example computations.
    scratch: (Vec<f32>, Vec<f32>),
    rows: usize,
    inputs: usize,
    outputs: usize,
    bias: bool,
}

impl DenseTrace {
    /// Takes the input of the pass (`delta` is already filled) and computes the summed gradient.
    pub(crate) fn record(
        &mut self,
        input: Arc<Vec<f32>>,
        rows: usize,
        inputs: usize,
        outputs: usize,
        bias: bool,
    ) {
        self.input = input;
        (self.rows, self.inputs, self.outputs, self.bias) = (rows, inputs, outputs, bias);
        self.compute_sum();
    }

    fn compute_sum(&mut self) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        self.grad.resize(self.params(), 0.0);
        let (gw, gb) = self.grad.split_at_mut(o * i);
        matmul(
            (o, b, i),
            Mat {
                data: &self.delta,
                layout: Layout::Transposed,
            },
            Mat {
                data: &self.input,
                layout: Layout::Normal,
            },
            gw,
            false,
        );
        if self.bias {
            gb.fill(0.0);
            for row in self.delta.chunks_exact(o) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
    }
}

/// `sum_r Delta_r A_r^T` (then the bias part `sum_r Delta_r`) of `rows` examples whose output
/// gradients `d` (`rows x o`) and inputs `a` (`rows x i`) are given.
fn outer_product_sum(
    d: &[f32],
    a: &[f32],
    rows: usize,
    i: usize,
    o: usize,
    bias: bool,
    out: &mut [f32],
) {
    let (w, b) = out.split_at_mut(o * i);
    matmul(
        (o, rows, i),
        Mat {
            data: d,
            layout: Layout::Transposed,
        },
        Mat {
            data: a,
            layout: Layout::Normal,
        },
        w,
        false,
    );
    if bias {
        b.fill(0.0);
        for row in d.chunks_exact(o) {
            b.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
    }
}

fn transpose(x: &[f32], rows: usize, cols: usize, out: &mut Vec<f32>) {
    out.resize(rows * cols, 0.0);
    for (r, row) in x.chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            out[c * rows + r] = *v;
        }
    }
}

impl LayerGrads for DenseTrace {
    fn batch(&self) -> usize {
        self.rows
    }

    fn params(&self) -> usize {
        self.outputs * self.inputs + if self.bias { self.outputs } else { 0 }
    }

    fn swap_sum(&mut self, buffer: &mut Vec<f32>) {
        std::mem::swap(&mut self.grad, buffer);
    }

    fn sq_norms(&mut self, out: &mut [f32]) {
        let a2 = &mut self.scratch.0;
        a2.resize(self.rows, 0.0);
        row_sq_norms(&self.input, self.inputs, a2);
        row_sq_norms(&self.delta, self.outputs, out);
        let extra = if self.bias { 1.0 } else { 0.0 };
        for (o, a) in out.iter_mut().zip(a2.iter()) {
            *o *= a + extra;
        }
    }

    fn coord_sum_sq(&mut self, out: &mut [f32]) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let (a2, d2) = &mut self.scratch;
        a2.clear();
        a2.extend(self.input.iter().map(|v| v * v));
        d2.clear();
        d2.extend(self.delta.iter().map(|v| v * v));
        // sum_r Delta_r^2 (A_r^2)^T and sum_r Delta_r^2: the outer-product sum of the squares
        outer_product_sum(d2, a2, b, i, o, self.bias, out);
    }

    fn gram(&mut self, out: &mut [f32]) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let aa = &mut self.scratch.0;
        aa.resize(b * b, 0.0);
        matmul(
            (b, i, b),
            Mat {
                data: &self.input,
                layout: Layout::Normal,
            },
            Mat {
                data: &self.input,
                layout: Layout::Transposed,
            },
            aa,
            false,
        );
        matmul(
            (b, o, b),
            Mat {
                data: &self.delta,
                layout: Layout::Normal,
            },
            Mat {
                data: &self.delta,
                layout: Layout::Transposed,
            },
            out,
            false,
        );
        let extra = if self.bias { 1.0 } else { 0.0 };
        for (g, a) in out.iter_mut().zip(aa.iter()) {
            *g *= a + extra;
        }
    }

    fn per_example(&mut self, out: &mut [f32]) {
        let (i, o, p) = (self.inputs, self.outputs, self.params());
        for (r, row) in out.chunks_exact_mut(p).enumerate() {
            let a = &self.input[r * i..(r + 1) * i];
            let d = &self.delta[r * o..(r + 1) * o];
            let (w, bias) = row.split_at_mut(o * i);
            for (wrow, &dv) in w.chunks_exact_mut(i).zip(d) {
                for (x, &av) in wrow.iter_mut().zip(a) {
                    *x = dv * av;
                }
            }
            if self.bias {
                bias.copy_from_slice(d);
            }
        }
    }

    fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]) {
        let (i, o) = (self.inputs, self.outputs);
        let (d, a) = (&mut Vec::new(), &mut Vec::new());
        for &r in rows {
            d.extend_from_slice(&self.delta[r * o..(r + 1) * o]);
            a.extend_from_slice(&self.input[r * i..(r + 1) * i]);
        }
        outer_product_sum(d, a, rows.len(), i, o, self.bias, out);
    }

    fn group_sum(&mut self, rows: Range<usize>, out: &mut [f32]) {
        let (i, o) = (self.inputs, self.outputs);
        let (d, a) = (
            &self.delta[rows.start * o..rows.end * o],
            &self.input[rows.start * i..rows.end * i],
        );
        outer_product_sum(d, a, rows.len(), i, o, self.bias, out);
    }

    /// Transposes `A` and `Delta` so that every coordinate's per-example values are one
    /// product of two contiguous rows.
    fn prepare_blocks(&mut self) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let (at, dt) = &mut self.transposed;
        transpose(&self.input, b, i, at);
        transpose(&self.delta, b, o, dt);
    }

    fn block(&self, coords: Range<usize>, out: &mut [f32]) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let (at, dt) = &self.transposed;
        for (c, col) in coords.zip(out.chunks_exact_mut(b)) {
            if c < o * i {
                let (a, d) = (&at[(c % i) * b..][..b], &dt[(c / i) * b..][..b]);
                for ((x, av), dv) in col.iter_mut().zip(a).zip(d) {
                    *x = av * dv;
                }
            } else {
                col.copy_from_slice(&dt[(c - o * i) * b..][..b]);
            }
        }
    }

    /// `Delta^T diag(w) A` (and `Delta^T w` for the bias): one matrix product on the deltas
    /// scaled row by row.
    fn weighted_sum(&self, weights: &[f32], out: &mut [f32]) -> bool {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let mut scaled = self.delta[..b * o].to_vec();
        for (row, w) in scaled.chunks_exact_mut(o).zip(weights) {
            row.iter_mut().for_each(|d| *d *= w);
        }
        outer_product_sum(&scaled, &self.input[..b * i], b, i, o, self.bias, out);
        true
    }

    /// Row `e` is `Delta[e, o] A[e, ..]` for weights of output `o`, so each piece is one
    /// scaled copy (needs no [`LayerGrads::prepare_blocks`]).
    fn block_rows(&self, coords: Range<usize>, out: &mut [f32]) {
        let (i, o, len) = (self.inputs, self.outputs, coords.len());
        // run by run of the block (the rest of a weight row, or one bias), all examples each
        let mut c = coords.start;
        while c < coords.end {
            let at = c - coords.start;
            if c < o * i {
                let (r, k) = (c / i, c % i);
                let n = (i - k).min(coords.end - c);
                for (e, row) in out.chunks_exact_mut(len).enumerate() {
                    let (a, dv) = (&self.input[e * i + k..][..n], self.delta[e * o + r]);
                    row[at..at + n]
                        .iter_mut()
                        .zip(a)
                        .for_each(|(x, av)| *x = av * dv);
                }
                c += n;
            } else {
                for (e, row) in out.chunks_exact_mut(len).enumerate() {
                    row[at] = self.delta[e * o + c - o * i];
                }
                c += 1;
            }
        }
    }
}
