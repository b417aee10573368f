//! What the engine reads from a parameterised layer after a backward pass: its summed gradient
//! and its exact per-example quantities (see [`crate::Layer`] for how they are recorded).

use std::ops::Range;
use std::sync::{MutexGuard, RwLockWriteGuard};

/// Per-example gradient quantities of one parameterised layer, available after a backward pass.
///
/// `g_i` is the gradient of example `i`'s loss with respect to the layer's parameters,
/// flattened like [`crate::Layer::params`]. Every method is exact (no approximation) and the
/// layers of this crate are tested against one backward pass per example. Methods take
/// `&mut self` to reuse the trace's scratch buffers: nothing is allocated once the sizes are
/// stable. Output slices have exactly the length each method states. `Sync`, because
/// [`LayerGrads::block`] is called from many threads at once.
///
/// [`crate::MatrixTrace`] implements it for per-example gradients held as one matrix, the easy
/// choice for a small layer.
pub trait LayerGrads: Sync {
    /// Number of examples of the last batch.
    fn batch(&self) -> usize;

    /// Number of parameters of the layer.
    fn params(&self) -> usize;

    /// Hands over the summed gradient `sum_i g_i` (`params` values) without copying: swaps it
    /// with `buffer`, whose old allocation the layer refills in its next backward pass.
    fn swap_sum(&mut self, buffer: &mut Vec<f32>);

    /// `|g_i|^2` for every example (`batch` values).
    fn sq_norms(&mut self, out: &mut [f32]);

    /// `sum_i g_i (.) g_i`, one value per parameter.
    fn coord_sum_sq(&mut self, out: &mut [f32]);

    /// Row-major `batch x batch` Gram matrix `g_i . g_j`.
    fn gram(&mut self, out: &mut [f32]);

    /// Row-major `batch x params`: row `i` is `g_i`.
    fn per_example(&mut self, out: &mut [f32]);

    /// The summed gradient of the examples `rows` (any subset of the batch, in any order).
    fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]);

    /// The summed gradient of the consecutive examples `rows`. The default lists the rows for
    /// [`LayerGrads::subset_sum`].
    fn group_sum(&mut self, rows: Range<usize>, out: &mut [f32]) {
        let rows: Vec<usize> = rows.collect();
        self.subset_sum(&rows, out);
    }

    /// Told before a pass what will be asked of it: where nothing but [`LayerGrads::swap_sum`]
    /// is (see [`coherent_core::GradRequest::beyond_sum`]), a layer may let go of what only
    /// the per-example quantities read as soon as its backward op is done, which lowers the
    /// pass's peak memory; where blocks are, it may materialise the per-example gradients in
    /// the pass itself. The default does nothing different.
    fn expect(&mut self, _request: &coherent_core::GradRequest) {}

    /// Readies [`LayerGrads::block`] and [`LayerGrads::block_rows`] after a backward pass
    /// (e.g. by materialising or transposing what they read). The default does nothing.
    fn prepare_blocks(&mut self) {}

    /// Per-example values of parameters `coords`, coordinate-major: `out[(c - coords.start) *
    /// batch + i]` is `g_i[c]`. Called from many threads at once, after
    /// [`LayerGrads::prepare_blocks`].
    fn block(&self, coords: Range<usize>, out: &mut [f32]);

    /// The same values example-major: `out[i * coords.len() + (c - coords.start)]`. The default
    /// transposes [`LayerGrads::block`]; layers that can write rows directly do.
    fn block_rows(&self, coords: Range<usize>, out: &mut [f32]) {
        let mut cols = vec![0.0; self.batch() * coords.len()];
        self.block(coords, &mut cols);
        coherent_core::columns_to_rows(&cols, self.batch(), out);
    }

    /// `sum_i weights[i] g_i` into `out` (`params` values) without materialising the `g_i`,
    /// returning whether the layer can; the default cannot (see
    /// [`coherent_core::PerExampleBlocks::weighted_sum`]).
    fn weighted_sum(&self, weights: &[f32], out: &mut [f32]) -> bool {
        let _ = (weights, out);
        false
    }
}

/// Forwards every method (also those with defaults) to the guarded trace, so that
/// [`crate::Layer::grads`] can return its locked trace as it is.
macro_rules! forward_layer_grads {
    ($guard:ident) => {
        impl<T: LayerGrads + ?Sized> LayerGrads for $guard<'_, T> {
            fn batch(&self) -> usize {
                (**self).batch()
            }
            fn params(&self) -> usize {
                (**self).params()
            }
            fn swap_sum(&mut self, buffer: &mut Vec<f32>) {
                (**self).swap_sum(buffer)
            }
            fn sq_norms(&mut self, out: &mut [f32]) {
                (**self).sq_norms(out)
            }
            fn coord_sum_sq(&mut self, out: &mut [f32]) {
                (**self).coord_sum_sq(out)
            }
            fn gram(&mut self, out: &mut [f32]) {
                (**self).gram(out)
            }
            fn per_example(&mut self, out: &mut [f32]) {
                (**self).per_example(out)
            }
            fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]) {
                (**self).subset_sum(rows, out)
            }
            fn group_sum(&mut self, rows: Range<usize>, out: &mut [f32]) {
                (**self).group_sum(rows, out)
            }
            fn expect(&mut self, request: &coherent_core::GradRequest) {
                (**self).expect(request)
            }
            fn prepare_blocks(&mut self) {
                (**self).prepare_blocks()
            }
            fn block(&self, coords: Range<usize>, out: &mut [f32]) {
                (**self).block(coords, out)
            }
            fn block_rows(&self, coords: Range<usize>, out: &mut [f32]) {
                (**self).block_rows(coords, out)
            }
            fn weighted_sum(&self, weights: &[f32], out: &mut [f32]) -> bool {
                (**self).weighted_sum(weights, out)
            }
        }
    };
}

forward_layer_grads!(RwLockWriteGuard);
forward_layer_grads!(MutexGuard);
