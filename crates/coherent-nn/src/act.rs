//! Activations that flow between layers: their values, the gradient their consumers sum into
//! in the backward pass, and a one-value tensor that carries dfdx's tape (the order of the
//! layers' backward ops); and the helper that records a layer's op on the tape.
//!
//! The gradients of activations are not dfdx's: dfdx keeps every gradient of a pass until the
//! pass ends and allocates each tensor's values as well. Here an activation's gradient is
//! made when the first of its consumers writes or adds into it and let go of when the layer
//! that produced it has used it, so a backward pass holds only the few gradients it is
//! between; the largest let go of lately is kept for the next ([`crate::spare`]).

use crate::spare;
use dfdx::prelude::{Cpu, Merge, OwnedTape, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// A runtime-shaped matrix tensor on the CPU.
pub type Tensor2<T> = Tensor<(usize, usize), f32, Cpu, T>;

/// The tape every layer records its backward op on: dfdx's owned tape of `f32` on the CPU.
pub type CpuTape = OwnedTape<f32, Cpu>;

/// Values per task of the element-wise passes over a batch (activations, their gradients,
/// residual sums).
pub(crate) const CHUNK: usize = 1 << 14;

/// The output of a layer: its values, its gradient, and the tape.
pub struct Act<T> {
    /// One value, carrying the tape (the order of the backward ops); the activation's values
    /// are in `data` and its gradient in `grad`.
    pub tensor: Tensor2<T>,
    /// The values, row-major `rows x cols`.
    pub data: Arc<Vec<f32>>,
    /// The gradient of the summed loss with respect to the values, which the consumers of the
    /// activation add into in the backward pass.
    pub grad: Arc<ActGrad>,
    /// Batch size.
    pub rows: usize,
    /// Features per example.
    pub cols: usize,
}

/// The gradient of one activation in the backward pass: the sum of what its consumers add,
/// written by the first of them (or zeros it adds into), in the spare buffer where it fits, and
/// taken by the layer that produced the activation, whose backward op runs after all of
/// theirs.
#[derive(Debug, Default)]
pub struct ActGrad(Mutex<Vec<f32>>);

impl ActGrad {
    /// Runs `f` on the gradient (`len` values, zeros until someone adds) to add into it.
    pub fn add_with<R>(&self, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut g = self.0.lock().expect("activation gradient lock");
        if g.len() != len {
            *g = zeros(len);
        }
        f(&mut g)
    }

    /// Runs `f(g, first)` on the gradient (`len` values): for its first consumer (`first`
    /// true) `g` holds arbitrary values and `f` must write every one of them; for the others
    /// it is the sum so far, to add into. The first consumer's writes replace the zero-filling
    /// of [`ActGrad::add_with`].
    pub fn write_or_add<R>(&self, len: usize, f: impl FnOnce(&mut [f32], bool) -> R) -> R {
        let mut g = self.0.lock().expect("activation gradient lock");
        if g.len() == len {
            return f(&mut g, false);
        }
        *g = spare::take(len).unwrap_or_else(|| fresh_zeros(len));
        if spare::first_writes_checked() {
            g.fill(f32::NAN);
        }
        f(&mut g, true)
    }

    /// Adds `g`: kept as it is if nobody has added yet, else added with `add(sum, g)`.
    pub fn add_owned(&self, g: Vec<f32>, add: impl FnOnce(&mut [f32], &[f32])) {
        let mut sum = self.0.lock().expect("activation gradient lock");
        if sum.len() == g.len() {
            add(&mut sum, &g);
            spare::recycle(g);
        } else {
            *sum = g;
        }
    }

    /// Takes the summed gradient (`len` zeros if nobody added to it).
    pub fn take(&self, len: usize) -> Vec<f32> {
        let g = std::mem::take(&mut *self.0.lock().expect("activation gradient lock"));
        if g.len() == len {
            g
        } else {
            zeros(len)
        }
    }
}

/// `len` zeros, in the spare buffer if it holds them, written in parallel.
fn zeros(len: usize) -> Vec<f32> {
    let Some(mut v) = spare::take(len) else {
        return fresh_zeros(len);
    };
    v.par_chunks_mut(CHUNK).for_each(|c| c.fill(0.0));
    v
}

/// `len` zeros in a new buffer, written in parallel.
fn fresh_zeros(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|c| c.iter_mut().for_each(|x| _ = x.write(0.0)));
    // SAFETY: the first `len` values were written just above.
    unsafe { v.set_len(len) };
    v
}

impl<T: Tape<f32, Cpu>> Act<T> {
    /// Wraps `data` (`rows x cols`) with a new gradient and a tensor carrying `tape`.
    pub fn new(dev: &Cpu, data: Vec<f32>, rows: usize, cols: usize, tape: T) -> Act<T> {
        Act::shared(dev, Arc::new(data), rows, cols, tape)
    }

    /// Wraps shared `data` with a new gradient and a tensor carrying `tape`.
    pub fn shared(dev: &Cpu, data: Arc<Vec<f32>>, rows: usize, cols: usize, tape: T) -> Act<T> {
        Act {
            tensor: dev.tensor_from_vec(vec![0.0], (1, 1)).put_tape(tape),
            data,
            grad: Arc::default(),
            rows,
            cols,
        }
    }

    /// The input of a network. Nobody reads its gradient: the first layer must not ask for
    /// its input gradient.
    pub fn network_input(
        dev: &Cpu,
        data: Arc<Vec<f32>>,
        rows: usize,
        cols: usize,
        tape: T,
    ) -> Act<T> {
        Act::shared(dev, data, rows, cols, tape)
    }

    /// Number of values, `rows x cols`.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// `dy`).
    pub fn record(
        self,
        output: Arc<Vec<f32>>,
        cols: usize,
        input_needs_grad: bool,
        backward: impl FnOnce(&[f32], Option<&mut [f32]>) + 'static,
    ) -> Act<CpuTape> {
        self.then(output, cols, input_needs_grad, move |dy, dx| match dx {
            Some(dx) => dx.add_with(|dx| backward(&dy, Some(dx))),
            None => backward(&dy, None),
        })
    }

    /// Records a layer's op on the tape, for the layers of this crate: `output` (`rows x
    /// cols`) becomes the next activation, and in the backward pass `backward(dy, dx)` receives
    /// the output's gradient (to keep or drop) and, when `input_needs_grad`, the input's.
    pub(crate) fn then(
        self,
        output: Arc<Vec<f32>>,
        cols: usize,
        input_needs_grad: bool,
        backward: impl FnOnce(Vec<f32>, Option<InputGrad>) + 'static,
    ) -> Act<CpuTape> {
        let rows = self.rows;
        let dx = input_needs_grad.then(|| self.input_grad());
        let dev = self.tensor.device().clone();
        let (_, tape) = self.tensor.split_tape();
        let y = Act::shared(&dev, output, rows, cols, CpuTape::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let dy = y.grad.clone();
        y_tape.add_backward_op(move |_| {
            backward(dy.take(rows * cols), dx);
            Ok(())
        });
        Act {
            tensor: y_tensor.put_tape(tape.merge(y_tape)),
            ..y
        }
    }

    /// This activation's gradient, for the backward op of a layer that reads it.
    pub(crate) fn input_grad(&self) -> InputGrad {
        InputGrad {
            grad: self.grad.clone(),
            len: self.len(),
        }
    }
}

/// The gradient of a layer's input, which its backward op adds into.
pub(crate) struct InputGrad {
    grad: Arc<ActGrad>,
    len: usize,
}

impl InputGrad {
    /// Runs `f` on the gradient (zeros until someone adds) to add into it.
    pub(crate) fn add_with<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        self.grad.add_with(self.len, f)
    }

    /// Runs `f(g, first)` on the gradient: see [`ActGrad::write_or_add`].
    pub(crate) fn write_or_add<R>(&self, f: impl FnOnce(&mut [f32], bool) -> R) -> R {
        self.grad.write_or_add(self.len, f)
    }
}

/// A shared empty buffer: what a trace holds in place of an input it has let go of (cloning it
/// allocates nothing).
pub(crate) fn empty_buffer() -> Arc<Vec<f32>> {
    static EMPTY: std::sync::LazyLock<Arc<Vec<f32>>> = std::sync::LazyLock::new(Arc::default);
    EMPTY.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gradient_sums_what_its_consumers_add_and_is_taken_once() {
        let g = ActGrad::default();
        assert_eq!(g.take(3), vec![0.0; 3], "nobody added: zeros");
        g.add_with(3, |d| d.copy_from_slice(&[1.0, 2.0, 3.0]));
        g.add_with(3, |d| d.iter_mut().for_each(|v| *v += 0.5));
        g.add_owned(vec![10.0, 20.0, 30.0], |sum, d| {
            sum.iter_mut().zip(d).for_each(|(s, v)| *s += v)
        });
        assert_eq!(g.take(3), vec![11.5, 22.5, 33.5]);
        assert_eq!(g.take(3), vec![0.0; 3], "taken: empty again");
        g.add_owned(vec![4.0, 5.0], |_, _| panic!("nothing to add to"));
        assert_eq!(
            g.take(2),
            vec![4.0, 5.0],
            "the first gradient is kept as it is"
        );
        assert_eq!(zeros(40_000), vec![0.0; 40_000]);
    }
}
