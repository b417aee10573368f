//! Dense (fully connected) layer: `y = A W^T + b`, as a custom op on dfdx's tape.

use crate::kernels::{matmul, row_sq_norms, Layout};
use crate::trace::{Act, LayerGrads};
use crate::Init;
use coherent_core::Rng;
use dfdx::prelude::{Cpu, PutTape, SplitTape, Tape};
use std::sync::{Arc, Mutex};

/// A dense layer with `inputs -> outputs` features and an optional bias.
///
/// Parameters are one flat vector: the weights `W` (`outputs x inputs`, row-major) then the
/// bias `b` (`outputs`). The backward pass records the layer input `A` and the output gradient
/// `Delta` in a [`DenseTrace`], from which per-example quantities follow exactly.
#[derive(Debug)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    bias: bool,
    params: Arc<Vec<f32>>,
    trace: Arc<Mutex<DenseTrace>>,
}

impl Dense {
    /// A layer initialised with `init`.
    pub fn new(inputs: usize, outputs: usize, bias: bool, init: Init, rng: &mut Rng) -> Dense {
        let mut params = vec![0.0; outputs * inputs + if bias { outputs } else { 0 }];
        let (w, b) = params.split_at_mut(outputs * inputs);
        init.fill(w, b, inputs, rng);
        Dense {
            inputs,
            outputs,
            bias,
            params: Arc::new(params),
            trace: Arc::new(Mutex::new(DenseTrace::default())),
        }
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Number of output features.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Whether the layer has a bias.
    pub fn has_bias(&self) -> bool {
        self.bias
    }

    /// The flat parameters (weights then bias).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Mutable flat parameters. Copies only if a tape still holds the old values.
    pub fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    /// The trace of the last backward pass.
    pub fn trace(&self) -> std::sync::MutexGuard<'_, DenseTrace> {
        self.trace.lock().expect("dense trace lock")
    }

    /// Forward pass on plain slices: `out = x W^T + b` for `rows` examples.
    pub fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let (o, i) = (self.outputs, self.inputs);
        out.clear();
        if self.bias {
            for _ in 0..rows {
                out.extend_from_slice(&self.params[o * i..]);
            }
        } else {
            out.resize(rows * o, 0.0);
        }
        matmul(
            rows,
            i,
            o,
            x,
            Layout::Normal,
            &self.params[..o * i],
            Layout::Transposed,
            out,
            true,
        );
    }

    /// Forward pass recorded on the tape. `input_needs_grad` is false for the first layer,
    /// whose input gradient nobody reads.
    pub fn forward<T: Tape<f32, Cpu>>(&self, x: Act<T>, input_needs_grad: bool) -> Act<T> {
        let rows = x.rows;
        let mut out = Vec::new();
        self.forward_slice(&x.data, rows, &mut out);
        let dev = x.tensor.device().clone();
        let (x_tensor, tape) = x.tensor.split_tape();
        let mut y = Act::new(&dev, out, rows, self.outputs, T::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let y_id = y_tensor.clone();
        let (trace, params, input) = (self.trace.clone(), self.params.clone(), x.data.clone());
        let (i, o, bias) = (self.inputs, self.outputs, self.bias);
        y_tape.add_backward_op(move |grads| {
            let mut tr = trace.lock().expect("dense trace lock");
            let tr = &mut *tr;
            let delta = grads.get_or_alloc_mut(&y_id)?;
            tr.delta.clear();
            tr.delta.extend_from_slice(delta);
            tr.input = input;
            (tr.rows, tr.inputs, tr.outputs, tr.bias) = (rows, i, o, bias);
            tr.compute_sum();
            if input_needs_grad {
                let dx = grads.get_or_alloc_mut(&x_tensor)?;
                matmul(
                    rows,
                    o,
                    i,
                    &tr.delta,
                    Layout::Normal,
                    &params[..o * i],
                    Layout::Normal,
                    dx,
                    true,
                );
            }
            Ok(())
        });
        let tape = tape.merge(y_tape);
        y.tensor = y_tensor.put_tape(tape);
        y
    }
}

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
    rows: usize,
    inputs: usize,
    outputs: usize,
    bias: bool,
}

impl DenseTrace {
    fn compute_sum(&mut self) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        self.grad.resize(self.params(), 0.0);
        let (gw, gb) = self.grad.split_at_mut(o * i);
        matmul(
            o,
            b,
            i,
            &self.delta,
            Layout::Transposed,
            &self.input,
            Layout::Normal,
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

impl LayerGrads for DenseTrace {
    fn batch(&self) -> usize {
        self.rows
    }

    fn params(&self) -> usize {
        self.outputs * self.inputs + if self.bias { self.outputs } else { 0 }
    }

    fn sq_norms(&self, out: &mut [f32]) {
        let mut a2 = vec![0.0; self.rows];
        row_sq_norms(&self.input, self.inputs, &mut a2);
        row_sq_norms(&self.delta, self.outputs, out);
        let extra = if self.bias { 1.0 } else { 0.0 };
        for (o, a) in out.iter_mut().zip(&a2) {
            *o *= a + extra;
        }
    }

    fn coord_sum_sq(&self, out: &mut [f32]) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let a2: Vec<f32> = self.input.iter().map(|v| v * v).collect();
        let d2: Vec<f32> = self.delta.iter().map(|v| v * v).collect();
        let (w, bias) = out.split_at_mut(o * i);
        matmul(
            o,
            b,
            i,
            &d2,
            Layout::Transposed,
            &a2,
            Layout::Normal,
            w,
            false,
        );
        if self.bias {
            bias.fill(0.0);
            for row in d2.chunks_exact(o) {
                for (g, d) in bias.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
    }

    fn gram(&self, out: &mut [f32]) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let mut aa = vec![0.0; b * b];
        matmul(
            b,
            i,
            b,
            &self.input,
            Layout::Normal,
            &self.input,
            Layout::Transposed,
            &mut aa,
            false,
        );
        matmul(
            b,
            o,
            b,
            &self.delta,
            Layout::Normal,
            &self.delta,
            Layout::Transposed,
            out,
            false,
        );
        let extra = if self.bias { 1.0 } else { 0.0 };
        for (g, a) in out.iter_mut().zip(&aa) {
            *g *= a + extra;
        }
    }

    fn per_example(&self, out: &mut [f32]) {
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
}
