//! The per-example gradient engine: after a backward pass, reads what a [`GradRequest`] asks
//! for from the [`LayerGrads`] of every parameterised layer into a [`BatchGrads`], and serves
//! their per-example gradients block by block.

use crate::grads::LayerGrads;
use coherent_core::{BatchGrads, GradRequest, PerExampleBlocks};
use std::ops::Range;

/// The per-example gradients of each layer, locked for reading.
pub(crate) type Traces<'a> = Vec<Box<dyn LayerGrads + 'a>>;

/// Fills `out` from the layers' traces (the summed gradients are handed over, not copied);
/// quantities that `request` does not ask for are left empty.
pub(crate) fn collect(
    traces: &mut Traces<'_>,
    rows: usize,
    request: &GradRequest,
    out: &mut BatchGrads,
) {
    out.sum.resize_with(traces.len(), Vec::new);
    for (s, t) in out.sum.iter_mut().zip(traces.iter_mut()) {
        // the trace refills the caller's old buffer in its next backward pass
        t.swap_sum(s);
    }
    let quantities: [(bool, &mut Vec<Vec<f32>>, Len, Compute); 4] = [
        (
            request.sq_norms,
            &mut out.sq_norms,
            |t| t.batch(),
            |t, o| t.sq_norms(o),
        ),
        (
            request.coord_sum_sq,
            &mut out.coord_sum_sq,
            |t| t.params(),
            |t, o| t.coord_sum_sq(o),
        ),
        (
            request.gram,
            &mut out.gram,
            |t| t.batch() * t.batch(),
            |t, o| t.gram(o),
        ),
        (
            request.per_example,
            &mut out.per_example,
            |t| t.batch() * t.params(),
            |t, o| t.per_example(o),
        ),
    ];
    for (wanted, buffers, len, compute) in quantities {
        fill(wanted, buffers, traces, len, compute);
    }
    let k = request.groups.min(rows);
    out.group_sums.resize_with(k, Vec::new);
    for (g, sums) in out.group_sums.iter_mut().enumerate() {
        sums.resize_with(traces.len(), Vec::new);
        for (buf, tr) in sums.iter_mut().zip(traces.iter_mut()) {
            buf.resize(tr.params(), 0.0);
            tr.group_sum(BatchGrads::group_range(g, k, rows), buf);
        }
    }
    out.subset_sums.resize_with(request.subsets.len(), Vec::new);
    for (subset, sums) in request.subsets.iter().zip(&mut out.subset_sums) {
        sums.resize_with(traces.len(), Vec::new);
        for (buf, tr) in sums.iter_mut().zip(traces.iter_mut()) {
            buf.resize(tr.params(), 0.0);
            tr.subset_sum(subset, buf);
        }
    }
}

/// The length of one layer's buffer of a quantity.
type Len = fn(&dyn LayerGrads) -> usize;

/// Writes one layer's quantity into its buffer.
type Compute = fn(&mut dyn LayerGrads, &mut [f32]);

/// One quantity of every layer into `out` (one buffer per layer), or nothing if not `wanted`.
fn fill(
    wanted: bool,
    out: &mut Vec<Vec<f32>>,
    traces: &mut Traces<'_>,
    len: Len,
    compute: Compute,
) {
    if !wanted {
        out.clear();
        return;
    }
    out.resize_with(traces.len(), Vec::new);
    for (buf, tr) in out.iter_mut().zip(traces.iter_mut()) {
        buf.resize(len(&**tr), 0.0);
        compute(&mut **tr, buf);
    }
}

/// The per-example gradients of every layer, block by block (after
/// [`LayerGrads::prepare_blocks`]).
pub(crate) struct Blocks<'a> {
    /// The layers' traces, in order.
    pub(crate) traces: &'a [Box<dyn LayerGrads + 'a>],
}

impl PerExampleBlocks for Blocks<'_> {
    fn batch(&self) -> usize {
        self.traces.first().map_or(0, |t| t.batch())
    }

    fn layers(&self) -> usize {
        self.traces.len()
    }

    fn layer_params(&self, layer: usize) -> usize {
        self.traces[layer].params()
    }

    fn block(&self, layer: usize, coords: Range<usize>, out: &mut [f32]) {
        self.traces[layer].block(coords, out);
    }

    fn block_rows(&self, layer: usize, coords: Range<usize>, out: &mut [f32]) {
        self.traces[layer].block_rows(coords, out);
    }

    fn weighted_sum(&self, layer: usize, weights: &[f32], out: &mut [f32]) -> bool {
        self.traces[layer].weighted_sum(weights, out)
    }
}
