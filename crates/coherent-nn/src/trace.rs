//! Activations that flow between ops, and what parameterised ops record for the engine.

use dfdx::prelude::{Cpu, PutTape, Tape, Tensor, TensorFromVec, ZerosTensor};
use std::sync::Arc;

/// A runtime-shaped matrix tensor on the CPU.
pub type Tensor2<T> = Tensor<(usize, usize), f32, Cpu, T>;

/// The output of an op: a tensor on dfdx's tape, and a readable copy of its values.
///
/// dfdx 0.13 gives no borrowed access to a tensor's data outside the crate, so every op keeps
/// its output values beside the tensor; the next op reads them from here.
pub struct Act<T> {
    /// The tensor, carrying the tape.
    pub tensor: Tensor2<T>,
    /// The same values, row-major `rows x cols`.
    pub data: Arc<Vec<f32>>,
    /// Batch size.
    pub rows: usize,
    /// Features per example.
    pub cols: usize,
}

impl<T: Tape<f32, Cpu>> Act<T> {
    /// Wraps `data` (`rows x cols`) in a new tensor carrying `tape`.
    pub fn new(dev: &Cpu, data: Vec<f32>, rows: usize, cols: usize, tape: T) -> Act<T> {
        Act::shared(dev, Arc::new(data), rows, cols, tape)
    }

    /// Wraps shared `data` in a new tensor carrying `tape`. The tensor's buffer comes from the
    /// device (dfdx's allocation cache, when enabled), so a network that reuses its `data`
    /// buffers allocates nothing large from pass to pass.
    pub fn shared(dev: &Cpu, data: Arc<Vec<f32>>, rows: usize, cols: usize, tape: T) -> Act<T> {
        let mut tensor = dev.zeros_like(&(rows, cols));
        tensor.copy_from(&data);
        Act {
            tensor: tensor.put_tape(tape),
            data,
            rows,
            cols,
        }
    }

    /// The input of a network: its values, and a one-element tensor that only carries the tape.
    ///
    /// Nobody reads the gradient of a network's input, so the input's values are not copied
    /// into a tensor of their own; the first op must not ask for its input gradient.
    pub fn network_input(
        dev: &Cpu,
        data: Arc<Vec<f32>>,
        rows: usize,
        cols: usize,
        tape: T,
    ) -> Act<T> {
        let tensor = dev.tensor_from_vec(vec![0.0], (1, 1)).put_tape(tape);
        Act {
            tensor,
            data,
            rows,
            cols,
        }
    }
}

/// Per-example gradient quantities of one parameterised layer, available after a backward pass.
///
/// Implemented by each parameterised op's trace; every method is exact (no approximation) and
/// is tested against one backward pass per example. Methods take `&mut self` to reuse the
/// trace's scratch buffers: nothing is allocated once the sizes are stable.
pub trait LayerGrads {
    /// Number of examples of the last batch.
    fn batch(&self) -> usize;
    /// Number of parameters of the layer.
    fn params(&self) -> usize;
    /// `|g_i|^2` for every example.
    fn sq_norms(&mut self, out: &mut [f32]);
    /// `sum_i g_i (.) g_i`, one value per parameter.
    fn coord_sum_sq(&mut self, out: &mut [f32]);
    /// Row-major `batch x batch` Gram matrix `g_i . g_j`.
    fn gram(&mut self, out: &mut [f32]);
    /// Row-major `batch x params`: row `i` is `g_i`.
    fn per_example(&mut self, out: &mut [f32]);
    /// The summed gradient of examples `rows` only.
    fn group_sum(&mut self, rows: std::ops::Range<usize>, out: &mut [f32]);
    /// The summed gradient of the examples `rows` (any subset of the batch, in any order).
    fn subset_sum(&mut self, rows: &[usize], out: &mut [f32]);
}
