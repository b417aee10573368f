//! The ops a [`crate::Sequential`] network chains, and uniform access to the parameterised ones.

use crate::conv::{Conv2d, ConvTrace};
use crate::dense::{Dense, DenseTrace};
use crate::group_norm::GroupNorm;
use crate::matrix_trace::MatrixTrace;
use crate::pool::Pool2d;
use crate::residual::Residual;
use crate::trace::{Act, LayerGrads};
use crate::Activation;
use dfdx::prelude::{Cpu, Tape};
use std::sync::{Arc, RwLockWriteGuard};

/// One op of a network. Activations flow between ops as flat rows, one example per row, image
/// tensors in channel-height-width order (so flattening is implicit).
#[derive(Debug)]
pub enum Op {
    /// A dense layer (parameterised).
    Dense(Dense),
    /// A 2-D convolution (parameterised).
    Conv2d(Conv2d),
    /// Max, average or global average pooling.
    Pool(Pool2d),
    /// Group normalisation (parameterised).
    GroupNorm(GroupNorm),
    /// A residual block (its parameterised ops are layers of the network).
    Residual(Residual),
    /// A pointwise activation.
    Activation(Activation),
}

impl Op {
    /// Features per example after this op, or what is wrong with `input` features before it.
    pub fn output_len(&self, input: usize) -> Result<usize, String> {
        let (want, out) = match self {
            Op::Dense(d) => (d.inputs(), d.outputs()),
            Op::Conv2d(c) => (c.geometry().input_len(), c.geometry().output_len()),
            Op::Pool(p) => (p.input_len(), p.output_len()),
            Op::GroupNorm(g) => (g.len(), g.len()),
            Op::Residual(r) => (r.input_len(), r.output_len()),
            Op::Activation(_) => (input, input),
        };
        if want == input {
            Ok(out)
        } else {
            Err(format!("expects {want} input features, receives {input}"))
        }
    }

    /// Kind of the parameterised layer (`dense`, `conv2d`, `group_norm`), `None` for the
    /// others (a residual block is not a layer: its ops are).
    pub fn layer_kind(&self) -> Option<&'static str> {
        match self {
            Op::Dense(_) => Some("dense"),
            Op::Conv2d(_) => Some("conv2d"),
            Op::GroupNorm(_) => Some("group_norm"),
            Op::Pool(_) | Op::Activation(_) | Op::Residual(_) => None,
        }
    }

    /// The parameterised ops of this op, in order (itself, or those inside a residual block).
    pub fn layers(&self) -> Vec<&Op> {
        match self {
            Op::Residual(r) => r.ops().flat_map(Op::layers).collect(),
            op if op.layer_kind().is_some() => vec![op],
            _ => vec![],
        }
    }

    /// The parameterised ops of this op, mutably.
    pub fn layers_mut(&mut self) -> Vec<&mut Op> {
        match self {
            Op::Residual(r) => r.ops_mut().flat_map(Op::layers_mut).collect(),
            op if op.layer_kind().is_some() => vec![op],
            _ => vec![],
        }
    }

    /// Parameters of a parameterised op.
    pub fn params(&self) -> Option<&[f32]> {
        match self {
            Op::Dense(d) => Some(d.params()),
            Op::Conv2d(c) => Some(c.params()),
            Op::GroupNorm(g) => Some(g.params()),
            Op::Pool(_) | Op::Activation(_) | Op::Residual(_) => None,
        }
    }

    pub(crate) fn params_mut(&mut self) -> Option<&mut [f32]> {
        match self {
            Op::Dense(d) => Some(d.params_mut()),
            Op::Conv2d(c) => Some(c.params_mut()),
            Op::GroupNorm(g) => Some(g.params_mut()),
            Op::Pool(_) | Op::Activation(_) | Op::Residual(_) => None,
        }
    }

    pub(crate) fn trace(&self) -> Option<TraceGuard<'_>> {
        match self {
            Op::Dense(d) => Some(TraceGuard::Dense(d.trace())),
            Op::Conv2d(c) => Some(TraceGuard::Conv(c.trace())),
            Op::GroupNorm(g) => Some(TraceGuard::Matrix(g.trace())),
            Op::Pool(_) | Op::Activation(_) | Op::Residual(_) => None,
        }
    }

    pub(crate) fn release_input(&self, empty: &Arc<Vec<f32>>) {
        match self {
            Op::Dense(d) => d.release_input(empty),
            Op::Conv2d(c) => c.release_input(empty),
            Op::Residual(r) => r.ops().for_each(|op| op.release_input(empty)),
            Op::GroupNorm(_) | Op::Pool(_) | Op::Activation(_) => {}
        }
    }

    pub(crate) fn forward<T: Tape<f32, Cpu>>(&self, x: Act<T>, input_needs_grad: bool) -> Act<T> {
        match self {
            Op::Dense(d) => d.forward(x, input_needs_grad),
            Op::Conv2d(c) => c.forward(x, input_needs_grad),
            Op::Pool(p) => p.forward(x, input_needs_grad),
            Op::GroupNorm(g) => g.forward(x, input_needs_grad),
            Op::Residual(r) => r.forward(x, input_needs_grad),
            Op::Activation(a) => a.forward(x, input_needs_grad),
        }
    }

    pub(crate) fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        match self {
            Op::Dense(d) => d.forward_slice(x, rows, out),
            Op::Conv2d(c) => c.forward_slice(x, rows, out),
            Op::Pool(p) => p.forward_slice(x, rows, out),
            Op::GroupNorm(g) => g.forward_slice(x, rows, out),
            Op::Residual(r) => r.forward_slice(x, rows, out),
            Op::Activation(a) => a.apply(x, out),
        }
    }
}

/// Exclusive access to the trace of one parameterised layer.
pub(crate) enum TraceGuard<'a> {
    Dense(RwLockWriteGuard<'a, DenseTrace>),
    Conv(RwLockWriteGuard<'a, ConvTrace>),
    Matrix(RwLockWriteGuard<'a, MatrixTrace>),
}

impl TraceGuard<'_> {
    pub(crate) fn grads(&mut self) -> &mut dyn LayerGrads {
        match self {
            TraceGuard::Dense(t) => &mut **t,
            TraceGuard::Conv(t) => &mut **t,
            TraceGuard::Matrix(t) => &mut **t,
        }
    }

    /// The summed gradient.
    pub(crate) fn sum(&mut self) -> &mut Vec<f32> {
        match self {
            TraceGuard::Dense(t) => &mut t.grad,
            TraceGuard::Conv(t) => &mut t.grad,
            TraceGuard::Matrix(t) => &mut t.grad,
        }
    }

    pub(crate) fn prepare_blocks(&mut self) {
        match self {
            TraceGuard::Dense(t) => t.prepare_blocks(),
            TraceGuard::Conv(t) => t.prepare_blocks(),
            TraceGuard::Matrix(_) => {}
        }
    }

    pub(crate) fn block(&self, coords: std::ops::Range<usize>, out: &mut [f32]) {
        match self {
            TraceGuard::Dense(t) => t.block(coords, out),
            TraceGuard::Conv(t) => t.block(coords, out),
            TraceGuard::Matrix(t) => t.block(coords, out),
        }
    }

    pub(crate) fn block_rows(&self, coords: std::ops::Range<usize>, out: &mut [f32]) {
        match self {
            TraceGuard::Dense(t) => t.block_rows(coords, out),
            TraceGuard::Conv(_) | TraceGuard::Matrix(_) => {
                let b = self.batch_and_params().0;
                let mut cols = vec![0.0; b * coords.len()];
                self.block(coords, &mut cols);
                coherent_core::columns_to_rows(&cols, b, out);
            }
        }
    }

    pub(crate) fn batch_and_params(&self) -> (usize, usize) {
        match self {
            TraceGuard::Dense(t) => (t.batch(), t.params()),
            TraceGuard::Conv(t) => (t.batch(), t.params()),
            TraceGuard::Matrix(t) => (t.batch(), t.params()),
        }
    }
}
