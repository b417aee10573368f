//! Activations that flow between layers: a tensor on dfdx's tape and a readable copy of its
//! values, and the helper that records a layer's op on the tape.

use dfdx::prelude::{
    Cpu, Merge, OwnedTape, PutTape, SplitTape, Tape, Tensor, TensorFromVec, ZerosTensor,
};
use std::sync::Arc;

/// A runtime-shaped matrix tensor on the CPU.
pub type Tensor2<T> = Tensor<(usize, usize), f32, Cpu, T>;

/// The tape every layer records its backward op on: dfdx's owned tape of `f32` on the CPU.
pub type CpuTape = OwnedTape<f32, Cpu>;

/// The output of a layer: a tensor on dfdx's tape, and a readable copy of its values.
///
/// dfdx 0.13 gives no borrowed access to a tensor's data outside the crate, so every layer
/// keeps its output values beside the tensor; the next layer reads them from here.
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
    /// into a tensor of their own; the first layer must not ask for its input gradient.
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

impl Act<CpuTape> {
    /// Records a layer's op on the tape: `output` (`rows x cols`, computed from `self.data`)
    /// becomes the next activation, and in the backward pass `backward(dy, dx)` receives `dy`,
    /// the gradient of the summed loss with respect to the output (`rows x cols`), and, when
    /// `input_needs_grad`, the gradient of the input (`rows x self.cols`) to *add* into (`None`
    /// otherwise: the network's first layer, whose input gradient nobody reads).
    ///
    /// `backward` runs once, during the one backward pass of the summed loss: that is where a
    /// parameterised layer records its per-example quantities (from the input it kept and
    /// `dy`). `dy` is a copy of dfdx's buffer (dfdx lends out one gradient at a time); the
    /// dense, convolution and GroupNorm layers of this crate use the tape directly instead and
    /// copy `dy` into their traces.
    pub fn record(
        self,
        output: Arc<Vec<f32>>,
        cols: usize,
        input_needs_grad: bool,
        backward: impl FnOnce(&[f32], Option<&mut [f32]>) + 'static,
    ) -> Act<CpuTape> {
        let rows = self.rows;
        let dev = self.tensor.device().clone();
        let (x_tensor, tape) = self.tensor.split_tape();
        let mut y = Act::shared(&dev, output, rows, cols, CpuTape::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let y_id = y_tensor.clone();
        y_tape.add_backward_op(move |grads| {
            let dy: Vec<f32> = grads.get_or_alloc_mut(&y_id)?.to_vec();
            if input_needs_grad {
                backward(&dy, Some(grads.get_or_alloc_mut(&x_tensor)?));
            } else {
                backward(&dy, None);
            }
            Ok(())
        });
        y.tensor = y_tensor.put_tape(tape.merge(y_tape));
        y
    }
}

/// A shared empty buffer: what a trace holds in place of an input it has let go of (cloning it
/// allocates nothing).
pub(crate) fn empty_buffer() -> Arc<Vec<f32>> {
    static EMPTY: std::sync::LazyLock<Arc<Vec<f32>>> = std::sync::LazyLock::new(Arc::default);
    EMPTY.clone()
}
