//! What a convolution records in its backward pass (its input `X` and the output gradients
//! `G`), its summed gradient, and the per-example quantities that follow: example `i`'s
//! gradient `g_i = G_i U_i` (weights) and `G_i 1` (bias), with `U_i` the unfolding of `X_i`,
//! materialised one example at a time where a quantity needs it (sums over subsets, coordinate
//! sums of squares) or all at once for Gram matrices and coordinate blocks. Squared norms are
//! in `norms`.
//!
//! The unfoldings are not kept: `U_i` is `k^2` times the size of `X_i` (a CIFAR ResNet's
//! first stage would hold 75 MB per layer at batch 128), and unfolding an example again costs
//! less than reading its unfolding back from memory. Each product unfolds its example (or, on
//! AVX-512, one slice of its positions at a time) into a buffer of its thread, where it stays
//! in cache for the product.

use super::geometry::ConvGeometry;
use super::implicit::{self, with_scratch, Scratch};
use super::norms::NormMethod;
use super::tile;
use super::transpose::transpose;
use super::unfold::im2col;
use crate::grads::LayerGrads;
use crate::kernels::{matmul, matmul_on, sq_norm, sum, Layout, Mat};
use crate::spare;
use crate::streaming::copy_streaming;
use crate::summing;
use coherent_core::GradRequest;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// What a convolution records in the backward pass: the inputs `X` (`rows x C_in H W`), the
/// pre-activation output gradients `G` (`rows x C_out x T`) and the summed gradient.
#[derive(Debug, Default)]
pub struct ConvTrace {
    /// The inputs of every example.
    pub input: Arc<Vec<f32>>,
    /// Output gradients, one `C_out x T` block per example.
    pub delta: Vec<f32>,
    /// Summed gradient: weights then bias.
    pub grad: Vec<f32>,
    /// Materialised per-example gradients (`rows x params`), for blocks.
    materialized: Vec<f32>,
    /// Each example's bias part (`rows x C_out`), before they are added up.
    bias_parts: Vec<f32>,
    /// `|g_i|^2` of the weights (without the bias), from the backward pass.
    pub(super) weight_norms: Vec<f32>,
    pub(super) geom: ConvGeometry,
    pub(super) rows: usize,
    pub(super) bias: bool,
    pub(super) method: NormMethod,
    /// Whether only the summed gradient is asked of this pass: the output gradients are then
    /// let go of once the backward op is done with them.
    sum_only: bool,
    /// Whether the pass will read every example's gradient whole (blocks, Gram matrices): they
    /// are then materialised while the summed gradient is formed.
    materialize_in_pass: bool,
    /// Whether `materialized` holds this pass's per-example gradients.
    materialized_now: bool,
    /// Whether `weight_norms` holds this pass's norms (else they take the ghost form).
    pub(super) norms_now: bool,
}

/// How the backward pass forms a convolution's summed gradient.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SumMode {
    /// Every product adds straight into its group's sum.
    Straight,
    /// Every example's squared norm is taken too: from the sums in registers of its product,
    /// added straight into its group's sum, where that product is one over all positions
    /// ([`implicit::norm_in_product`]); elsewhere from its product formed on its own.
    Norms,
    /// And kept whole, transposed back, for the per-example gradients.
    Materialize,
}

/// Partial sums of a batch at most: the groups of examples are fixed by the batch's size, summed
/// in parallel (each in the order of its examples) and then in order, so every sum is the same
/// on any number of threads (a run is reproducible bit for bit whatever the machine's cores).
/// Up to this many threads share the products; and the partial sums, each the size of the
/// layer, cost little memory traffic next to the products.
const PARTIALS: usize = 8;

/// Examples per partial sum for a batch of `rows`.
fn group_size(rows: usize) -> usize {
    rows.div_ceil(PARTIALS).max(1)
}

/// Runs `f` with a buffer of `len` values for one example's gradient and this thread's
/// buffers for the products.
fn with_gradient<R>(len: usize, f: impl FnOnce(&mut [f32], &mut Scratch) -> R) -> R {
    with_scratch(|s| {
        let mut g = std::mem::take(&mut s.gradient);
        g.resize(len, 0.0);
        let r = f(&mut g, s);
        s.gradient = g;
        r
    })
}

/// `out = ` the sum of the consecutive `out.len()`-long partial sums in `partials`, in order
/// (in parallel over pieces of `out`).
fn add_groups(partials: &[f32], out: &mut [f32]) {
    let len = out.len();
    out.par_chunks_mut(ADD_CHUNK)
        .enumerate()
        .for_each(|(k, out)| {
            let piece = k * ADD_CHUNK..k * ADD_CHUNK + out.len();
            let mut parts = partials.chunks_exact(len).map(|p| &p[piece.clone()]);
            out.copy_from_slice(parts.next().expect("at least one partial sum"));
            for part in parts {
                out.iter_mut().zip(part).for_each(|(o, v)| *o += v);
            }
        });
}

/// The bias part `G_i 1` of an example's gradient, from its output gradients `gi` (`C_out x
/// t`), into `out`.
fn bias_part(gi: &[f32], t: usize, out: &mut [f32]) {
    for (g, row) in out.iter_mut().zip(gi.chunks_exact(t)) {
        *g = sum(row);
    }
}

/// Values of the summed gradient added up by one task.
const ADD_CHUNK: usize = 1 << 14;

impl ConvTrace {
    /// Takes the inputs of the pass (`delta` is already filled) and computes the summed
    /// gradient.
    pub(super) fn record(
        &mut self,
        input: Arc<Vec<f32>>,
        geom: ConvGeometry,
        rows: usize,
        bias: bool,
    ) {
        (self.input, self.geom, self.rows, self.bias) = (input, geom, rows, bias);
        self.compute_sum();
    }

    /// Lets go of the output gradients where only the summed gradient is asked of the pass
    /// (after the backward op has used them).
    pub(super) fn release_if_sum_only(&mut self) {
        if self.sum_only {
            spare::recycle(std::mem::take(&mut self.delta));
        }
    }

    /// `G_i` (`C_out x T`) of example `i`.
    pub(super) fn output_grad(&self, i: usize) -> &[f32] {
        let (t, _, co) = self.geom.dims();
        assert!(
            !self.delta.is_empty() || self.rows == 0,
            "per-example quantities of a pass that asked for the summed gradient alone"
        );
        &self.delta[i * co * t..(i + 1) * co * t]
    }

    /// `X_i`, example `i`'s input.
    pub(super) fn input_of(&self, i: usize) -> &[f32] {
        let n = self.geom.input_len();
        &self.input[i * n..(i + 1) * n]
    }

    /// `U_i` (`K x T`), the unfolding of example `i`'s input, into `u`.
    pub(super) fn unfold<'u>(&self, i: usize, u: &'u mut Vec<f32>) -> &'u [f32] {
        let (t, kk, _) = self.geom.dims();
        u.resize(t * kk, 0.0);
        im2col(&self.geom, self.input_of(i), u);
        u
    }

    /// How this pass forms the summed gradient: each example's product on its own where the
    /// norms are computed from it (its squared norm then comes almost for free) or the
    /// per-example gradients are read whole; straight into the sums where the norms take the
    /// ghost form or only the sum is asked.
    fn sum_mode(&self) -> SumMode {
        if self.sum_only {
            SumMode::Straight
        } else if self.materialize_in_pass {
            SumMode::Materialize
        } else if self.ghost() {
            SumMode::Straight
        } else {
            SumMode::Norms
        }
    }

    fn compute_sum(&mut self) {
        let (_, kk, co) = self.geom.dims();
        let p = self.params();
        let mode = self.sum_mode();
        let mut norms = std::mem::take(&mut self.weight_norms);
        norms.clear();
        norms.resize(self.rows, f32::NAN);
        // every partial sum is written whole by its group's first example: no zeroing
        let group = group_size(self.rows);
        let groups = self.rows.div_ceil(group);
        let mut partials = summing::take(groups * co * kk);
        let mut materialized = std::mem::take(&mut self.materialized);
        let rows: Vec<&mut [f32]> = if mode == SumMode::Materialize {
            materialized.resize(self.rows * p, 0.0);
            materialized.chunks_mut(group * p).collect()
        } else {
            (0..groups).map(|_| &mut [][..]).collect()
        };
        // materialised examples in the layer's order are summed in it too
        let upright = mode == SumMode::Materialize && self.upright();
        let this = &*self;
        partials
            .par_chunks_mut(co * kk)
            .zip(norms.par_chunks_mut(group))
            .zip(rows)
            .enumerate()
            .for_each(|(k, ((acc, norms), rows))| {
                let examples = k * group..k * group + norms.len();
                if mode == SumMode::Straight {
                    return with_scratch(|u| this.weights_transposed_of(examples, acc, u));
                }
                if mode == SumMode::Norms && this.norms_in_products() {
                    return with_scratch(|u| {
                        this.weights_transposed_and_norms(examples, acc, norms, u)
                    });
                }
                if upright {
                    return with_gradient(p, |g, u| {
                        this.materialize_upright(examples, (acc, norms), rows, (g, u))
                    });
                }
                let mut rows = rows.chunks_exact_mut(p);
                with_gradient(co * kk, |gi_w, u| {
                    for (i, norm) in examples.zip(norms) {
                        this.example_weights_transposed(i, gi_w, u, false);
                        *norm = sq_norm(gi_w);
                        if i % group == 0 {
                            acc.copy_from_slice(gi_w);
                        } else {
                            acc.iter_mut().zip(gi_w.iter()).for_each(|(a, v)| *a += v);
                        }
                        if let Some(row) = rows.next() {
                            // formed in cache, then streamed into its row
                            let mut g = std::mem::take(&mut u.transposed);
                            g.resize(p, 0.0);
                            this.example_from_transposed(i, gi_w, &mut g);
                            copy_streaming(row, &g);
                            u.transposed = g;
                        }
                    }
                })
            });
        (self.weight_norms, self.materialized) = (norms, materialized);
        self.norms_now = mode != SumMode::Straight;
        self.materialized_now = mode == SumMode::Materialize;
        self.grad.resize(p, 0.0);
        let (gw, gb) = self.grad.split_at_mut(co * kk);
        let mut sum = summing::take(co * kk);
        add_groups(&partials, &mut sum);
        if upright {
            gw.copy_from_slice(&sum);
        } else {
            transpose(&sum, co, (kk, co), gw);
        }
        summing::give(partials);
        summing::give(sum);
        if self.bias {
            // each example's bias part in parallel, then added up in the examples' order
            let t = self.geom.positions();
            let mut parts = std::mem::take(&mut self.bias_parts);
            parts.resize(self.rows * co, 0.0);
            parts
                .par_chunks_mut(co)
                .zip(self.delta.par_chunks(co * t))
                .for_each(|(part, gi)| bias_part(gi, t, part));
            gb.fill(0.0);
            for part in parts.chunks_exact(co) {
                gb.iter_mut().zip(part).for_each(|(g, v)| *g += v);
            }
            self.bias_parts = parts;
        }
    }

    /// The sum of the transposed weight parts `U_i G_i^T` of the examples `examples` into
    /// `acc`, several examples to a product where their outputs are small (and the tiles run).
    fn weights_transposed_of(&self, examples: Range<usize>, acc: &mut [f32], s: &mut Scratch) {
        if !tile::available() {
            let first = examples.start;
            return examples.for_each(|i| self.example_weights_transposed(i, acc, s, i > first));
        }
        let (n, d) = (self.geom.input_len(), self.geom.output_len());
        let m = implicit::examples_per_slice(&self.geom);
        for start in examples.clone().step_by(m) {
            let e = start..(start + m).min(examples.end);
            let (xs, gis) = (
                &self.input[e.start * n..e.end * n],
                &self.delta[e.start * d..e.end * d],
            );
            let add = start > examples.start;
            implicit::weight_grads_transposed(&self.geom, (xs, gis), s, acc, add);
        }
    }

    /// Whether an example's weight gradient is formed in the layer's own order
    /// ([`implicit::weight_grad`]: small outputs, on AVX-512) rather than transposed.
    fn upright(&self) -> bool {
        tile::available() && implicit::ghost_in_tiles(&self.geom)
    }

    /// Every example of `examples` materialised in the layer's order into `rows` (one row of
    /// `params` each), its weight part's squared norm into `norms`, and the weight parts
    /// summed into `acc` (`C_out x K`, written by the first): where [`Self::upright`]. Each
    /// example's gradient is formed in `g` (`params` values, in cache), measured and added
    /// there, and streamed into its row.
    fn materialize_upright(
        &self,
        examples: Range<usize>,
        (acc, norms): (&mut [f32], &mut [f32]),
        rows: &mut [f32],
        (g, u): (&mut [f32], &mut Scratch),
    ) {
        let first = examples.start;
        let rows = rows.chunks_exact_mut(self.params());
        for ((i, norm), row) in examples.zip(norms).zip(rows) {
            self.example(i, g, u);
            let w = &g[..acc.len()];
            *norm = sq_norm(w);
            if i == first {
                acc.copy_from_slice(w);
            } else {
                acc.iter_mut().zip(w).for_each(|(a, v)| *a += v);
            }
            copy_streaming(row, g);
        }
    }

    /// Whether the products of this layer's examples give their squared norms (on AVX-512,
    /// where each example's weight gradient is one product).
    pub(super) fn norms_in_products(&self) -> bool {
        tile::available() && implicit::norm_in_product(&self.geom)
    }

    /// The sum of the transposed weight parts `U_i G_i^T` of the examples `examples` into
    /// `acc` (written by the first), and each one's squared norm into `norms`, taken from the
    /// products ([`Self::norms_in_products`]).
    fn weights_transposed_and_norms(
        &self,
        examples: Range<usize>,
        acc: &mut [f32],
        norms: &mut [f32],
        s: &mut Scratch,
    ) {
        let first = examples.start;
        for (i, norm) in examples.zip(norms) {
            let example = (self.input_of(i), self.output_grad(i));
            *norm =
                implicit::weight_grad_transposed_and_norm(&self.geom, example, s, acc, i > first);
        }
    }

    /// The transposed weight part `U_i G_i^T` (`K x C_out`) of example `i`'s gradient into
    /// `out`, or added to it with `add`, through the buffers `s`.
    fn example_weights_transposed(&self, i: usize, out: &mut [f32], s: &mut Scratch, add: bool) {
        if tile::available() {
            let (x, gi) = (self.input_of(i), self.output_grad(i));
            return implicit::weight_grad_transposed(&self.geom, x, gi, s, out, add);
        }
        self.unfolded_weights_transposed(i, out, s, add);
    }

    /// [`Self::example_weights_transposed`] through the whole unfolding of the example and the
    /// general matrix product (where the tiles do not run).
    fn unfolded_weights_transposed(&self, i: usize, out: &mut [f32], s: &mut Scratch, add: bool) {
        let (t, kk, co) = self.geom.dims();
        let (gi, ui) = (self.output_grad(i), self.unfold(i, &mut s.unfolded));
        matmul_on(
            (kk, t, co),
            Mat {
                data: ui,
                layout: Layout::Normal,
            },
            Mat {
                data: gi,
                layout: Layout::Transposed,
            },
            out,
            add,
            false,
        );
    }

    /// `g_i` of example `i` into `out` (`params` values), through the buffers `u`.
    fn example(&self, i: usize, out: &mut [f32], u: &mut Scratch) {
        let (t, kk, co) = self.geom.dims();
        if self.upright() {
            let (x, gi) = (self.input_of(i), self.output_grad(i));
            let (w, b) = out.split_at_mut(co * kk);
            implicit::weight_grad(&self.geom, x, gi, u, w);
            if self.bias {
                bias_part(gi, t, b);
            }
            return;
        }
        let mut transposed = std::mem::take(&mut u.transposed);
        transposed.resize(kk * co, 0.0);
        self.example_weights_transposed(i, &mut transposed, u, false);
        self.example_from_transposed(i, &transposed, out);
        u.transposed = transposed;
    }

    /// `g_i` of example `i` into `out` from its transposed weight part `transposed` (`K x
    /// C_out`): the weight part `G_i U_i` transposed back, then the bias.
    fn example_from_transposed(&self, i: usize, transposed: &[f32], out: &mut [f32]) {
        let (t, kk, co) = self.geom.dims();
        let (w, b) = out.split_at_mut(co * kk);
        transpose(transposed, co, (kk, co), w);
        if self.bias {
            bias_part(self.output_grad(i), t, b);
        }
    }

    /// Materialises every example's gradient into `self.materialized`.
    fn materialize_all(&mut self) {
        if self.materialized_now {
            return;
        }
        let p = self.params();
        let mut m = std::mem::take(&mut self.materialized);
        m.resize(self.rows * p, 0.0);
        m.par_chunks_mut(p)
            .enumerate()
            .for_each(|(i, out)| with_scratch(|u| self.example(i, out, u)));
        self.materialized = m;
        self.materialized_now = true;
    }
}

impl LayerGrads for ConvTrace {
    fn batch(&self) -> usize {
        self.rows
    }

    fn expect(&mut self, request: &GradRequest) {
        self.sum_only = !request.beyond_sum();
        self.materialize_in_pass = request.blocks || request.gram;
    }

    fn params(&self) -> usize {
        let (_, kk, co) = self.geom.dims();
        co * kk + if self.bias { co } else { 0 }
    }

    fn swap_sum(&mut self, buffer: &mut Vec<f32>) {
        std::mem::swap(&mut self.grad, buffer);
    }

    fn sq_norms(&mut self, out: &mut [f32]) {
        self.norms_into(out);
    }

    fn coord_sum_sq(&mut self, out: &mut [f32]) {
        let p = self.params();
        let group = group_size(self.rows);
        let mut partials = summing::take(self.rows.div_ceil(group) * p);
        partials.fill(0.0);
        let this = &*self;
        partials.par_chunks_mut(p).enumerate().for_each(|(k, acc)| {
            with_gradient(p, |g, u| {
                for i in k * group..((k + 1) * group).min(this.rows) {
                    this.example(i, g, u);
                    acc.iter_mut().zip(g.iter()).for_each(|(a, v)| *a += v * v);
                }
            })
        });
        add_groups(&partials, out);
        summing::give(partials);
    }

    fn gram(&mut self, out: &mut [f32]) {
        self.materialize_all();
        let (b, p) = (self.rows, self.params());
        matmul(
            (b, p, b),
            Mat {
                data: &self.materialized,
                layout: Layout::Normal,
            },
            Mat {
                data: &self.materialized,
                layout: Layout::Transposed,
            },
            out,
            false,
        );
    }

    fn per_example(&mut self, out: &mut [f32]) {
        let p = self.params();
        out.par_chunks_mut(p)
            .enumerate()
            .for_each(|(i, o)| with_scratch(|u| self.example(i, o, u)));
    }

    fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]) {
        out.fill(0.0);
        with_gradient(self.params(), |g, u| {
            for &i in rows {
                self.example(i, g, u);
                out.iter_mut().zip(g.iter()).for_each(|(o, v)| *o += v);
            }
        });
    }

    /// Materialises every example's gradient.
    fn prepare_blocks(&mut self) {
        self.materialize_all();
    }

    /// The columns `coords` of the materialised gradients (examples x parameters), transposed.
    fn block(&self, coords: Range<usize>, out: &mut [f32]) {
        let (b, p) = (self.rows, self.params());
        let shape = (b, coords.len());
        transpose(&self.materialized[coords.start..], p, shape, out);
    }

    fn block_rows(&self, coords: Range<usize>, out: &mut [f32]) {
        let (p, len) = (self.params(), coords.len());
        if len == 0 {
            return;
        }
        for (row, dst) in self
            .materialized
            .chunks_exact(p)
            .zip(out.chunks_exact_mut(len))
        {
            dst.copy_from_slice(&row[coords.clone()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::definition::weight_grad_transposed as by_definition;
    use super::*;
    use coherent_core::Rng;

    #[test]
    fn both_ways_to_a_transposed_weight_gradient_equal_the_definition() {
        let mut rng = Rng::new(11);
        for g in [
            ConvGeometry::new((3, 9, 8), 5, 3, 1, 1),
            ConvGeometry::new((2, 18, 20), 33, 3, 2, 1),
            ConvGeometry::new((4, 16, 16), 8, 1, 1, 0),
            // few positions: the norms take the ghost form, the products add into the sum
            ConvGeometry::new((16, 4, 4), 32, 3, 1, 1),
        ] {
            let (t, kk, co) = g.dims();
            let rows = 3;
            let mut normal = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>();
            let mut trace = ConvTrace {
                delta: normal(rows * co * t),
                ..ConvTrace::default()
            };
            let input = Arc::new(normal(rows * g.input_len()));
            trace.record(input.clone(), g, rows, false);
            let mut s = Scratch::default();
            let mut sum = vec![0.0; kk * co];
            for i in 0..rows {
                let x = &input[i * g.input_len()..(i + 1) * g.input_len()];
                let want = by_definition(&g, x, trace.output_grad(i));
                sum.iter_mut().zip(&want).for_each(|(s, w)| *s += w);
                let (mut tiled, mut unfolded) = (vec![0.0; kk * co], vec![0.0; kk * co]);
                trace.example_weights_transposed(i, &mut tiled, &mut s, false);
                trace.unfolded_weights_transposed(i, &mut unfolded, &mut s, false);
                for (k, w) in want.iter().enumerate() {
                    let tol = 1e-4 * (1.0 + w.abs());
                    assert!(
                        (tiled[k] - w).abs() < tol,
                        "{g:?} {i} {k}: {} vs {w}",
                        tiled[k]
                    );
                    assert!(
                        (unfolded[k] - w).abs() < tol,
                        "{g:?} {i} {k}: {} vs {w}",
                        unfolded[k]
                    );
                }
            }
            for (k, w) in sum.iter().enumerate() {
                let got = trace.grad[k % co * kk + k / co];
                assert!(
                    (got - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "{g:?} sum {k}: {got} vs {w}"
                );
            }
        }
    }
}
