//! Per-example gradients held as one `rows x params` matrix: the trace of layers whose
//! per-example gradients are small enough to keep (normalisation layers, small layers written
//! outside this crate).

use crate::grads::LayerGrads;
use crate::kernels::{matmul, row_sq_norms, Layout, Mat};
use std::ops::Range;

/// Materialised per-example gradients and their sum.
///
/// In its backward op a layer calls [`MatrixTrace::reset`], writes example `i`'s gradient
/// into row `i` of what it returns, then calls [`MatrixTrace::compute_sum`]; every quantity of
/// [`LayerGrads`] then follows from the matrix.
#[derive(Debug, Default)]
pub struct MatrixTrace {
    /// `rows x params`: row `i` is `g_i`.
    pub values: Vec<f32>,
    /// The summed gradient.
    pub grad: Vec<f32>,
    /// Examples.
    pub rows: usize,
    /// Parameters.
    pub params: usize,
}

impl MatrixTrace {
    /// Sizes the trace for `rows` examples of `params` parameters and returns the matrix to
    /// fill, row `i` for example `i` (its old values are left in place).
    pub fn reset(&mut self, rows: usize, params: usize) -> &mut [f32] {
        (self.rows, self.params) = (rows, params);
        self.values.resize(rows * params, 0.0);
        &mut self.values
    }

    /// Recomputes the sum from the rows.
    pub fn compute_sum(&mut self) {
        self.grad.clear();
        self.grad.resize(self.params, 0.0);
        for row in self.values.chunks_exact(self.params.max(1)) {
            self.grad.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
    }
}

impl LayerGrads for MatrixTrace {
    fn batch(&self) -> usize {
        self.rows
    }

    fn params(&self) -> usize {
        self.params
    }

    fn swap_sum(&mut self, buffer: &mut Vec<f32>) {
        std::mem::swap(&mut self.grad, buffer);
    }

    fn sq_norms(&mut self, out: &mut [f32]) {
        row_sq_norms(&self.values, self.params, out);
    }

    fn coord_sum_sq(&mut self, out: &mut [f32]) {
        out.fill(0.0);
        for row in self.values.chunks_exact(self.params) {
            out.iter_mut().zip(row).for_each(|(o, v)| *o += v * v);
        }
    }

    fn gram(&mut self, out: &mut [f32]) {
        let (b, p) = (self.rows, self.params);
        matmul(
            (b, p, b),
            Mat {
                data: &self.values,
                layout: Layout::Normal,
            },
            Mat {
                data: &self.values,
                layout: Layout::Transposed,
            },
            out,
            false,
        );
    }

    fn per_example(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.values);
    }

    fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]) {
        out.fill(0.0);
        for &r in rows {
            let row = &self.values[r * self.params..(r + 1) * self.params];
            out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
    }

    fn group_sum(&mut self, rows: Range<usize>, out: &mut [f32]) {
        out.fill(0.0);
        for row in
            self.values[rows.start * self.params..rows.end * self.params].chunks_exact(self.params)
        {
            out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
    }

    fn block(&self, coords: Range<usize>, out: &mut [f32]) {
        for (c, col) in coords.zip(out.chunks_exact_mut(self.rows)) {
            for (e, x) in col.iter_mut().enumerate() {
                *x = self.values[e * self.params + c];
            }
        }
    }

    fn block_rows(&self, coords: Range<usize>, out: &mut [f32]) {
        let len = coords.len();
        if len == 0 {
            return;
        }
        for (row, dst) in self
            .values
            .chunks_exact(self.params)
            .zip(out.chunks_exact_mut(len))
        {
            dst.copy_from_slice(&row[coords.clone()]);
        }
    }
}
