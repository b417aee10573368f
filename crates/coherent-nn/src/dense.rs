//! Dense (fully connected) layer `y = f(A W^T + b)`, with an optional fused activation `f`, as
//! a custom op on dfdx's tape.

use crate::kernels::{matmul, row_sq_norms, Layout};
use crate::trace::{Act, LayerGrads};
use crate::{Activation, Init};
use coherent_core::Rng;
use dfdx::prelude::{Cpu, PutTape, SplitTape, Tape};
use std::sync::{Arc, Mutex, RwLock};

/// A dense layer with `inputs -> outputs` features, an optional bias and an optional fused
/// activation.
///
/// Parameters are one flat vector: the weights `W` (`outputs x inputs`, row-major) then the
/// bias `b` (`outputs`). The backward pass records the layer input `A` and the gradient
/// `Delta` of the loss with respect to the pre-activation output in a [`DenseTrace`], from which
/// per-example quantities follow exactly. Fusing the activation saves one tensor and one pass
/// over the activations per step.
#[derive(Debug)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    bias: bool,
    activation: Option<Activation>,
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<DenseTrace>>,
    /// The output buffer, reused from pass to pass once nothing else holds it.
    output: Mutex<Arc<Vec<f32>>>,
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
            activation: None,
            params: Arc::new(params),
            trace: Arc::new(RwLock::new(DenseTrace::default())),
            output: Mutex::default(),
        }
    }

    /// The same layer followed by `activation`.
    pub fn with_activation(mut self, activation: Activation) -> Dense {
        self.activation = Some(activation);
        self
    }

    /// The fused activation, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.activation
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

    /// Lets go of the previous pass's input (so that the layer before reuses its buffer).
    pub fn release_input(&self, empty: &Arc<Vec<f32>>) {
        self.trace().input = empty.clone();
    }

    /// The trace of the last backward pass.
    pub fn trace(&self) -> std::sync::RwLockWriteGuard<'_, DenseTrace> {
        self.trace.write().expect("dense trace lock")
    }

    /// Forward pass on plain slices: `out = f(x W^T + b)` for `rows` examples.
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
        if let Some(f) = self.activation {
            f.apply_in_place(out);
        }
    }

    /// Forward pass recorded on the tape. `input_needs_grad` is false for the first layer,
    /// whose input gradient nobody reads.
    pub fn forward<T: Tape<f32, Cpu>>(&self, x: Act<T>, input_needs_grad: bool) -> Act<T> {
        let rows = x.rows;
        let out = {
            let mut buffer = self.output.lock().expect("dense output lock");
            self.forward_slice(&x.data, rows, Arc::make_mut(&mut buffer));
            buffer.clone()
        };
        let dev = x.tensor.device().clone();
        let (x_tensor, tape) = x.tensor.split_tape();
        let mut y = Act::shared(&dev, out, rows, self.outputs, T::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let y_id = y_tensor.clone();
        let (trace, params, input) = (self.trace.clone(), self.params.clone(), x.data.clone());
        let (i, o, bias, activation) = (self.inputs, self.outputs, self.bias, self.activation);
        let output = activation.map(|_| y.data.clone());
        y_tape.add_backward_op(move |grads| {
            let mut tr = trace.write().expect("dense trace lock");
            let tr = &mut *tr;
            let dy = grads.get_or_alloc_mut(&y_id)?;
            let act = activation.zip(output.as_deref().map(Vec::as_slice));
            crate::activation::pre_activation_grad(act, dy, &mut tr.delta);
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
        o,
        rows,
        i,
        d,
        Layout::Transposed,
        a,
        Layout::Normal,
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

impl DenseTrace {
    /// Prepares [`DenseTrace::block`]: transposes `A` and `Delta` so that every coordinate's
    /// per-example values are one product of two contiguous rows.
    pub fn prepare_blocks(&mut self) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let (at, dt) = &mut self.transposed;
        transpose(&self.input, b, i, at);
        transpose(&self.delta, b, o, dt);
    }

    /// Per-example values of parameters `coords`, example-major (`out[e * len + c]`): row `e`
    /// is `Delta[e, o] A[e, ..]` for weights of output `o`, so each piece is one scaled copy.
    pub fn block_rows(&self, coords: std::ops::Range<usize>, out: &mut [f32]) {
        let (i, o, len) = (self.inputs, self.outputs, coords.len());
        for (e, row) in out.chunks_exact_mut(len).enumerate() {
            let (a, d) = (
                &self.input[e * i..(e + 1) * i],
                &self.delta[e * o..(e + 1) * o],
            );
            let mut c = coords.start;
            while c < coords.end {
                let dst = &mut row[c - coords.start..];
                if c < o * i {
                    // the rest of weight row c / i, as far as the block goes
                    let (r, k) = (c / i, c % i);
                    let n = (i - k).min(coords.end - c);
                    let dv = d[r];
                    dst[..n]
                        .iter_mut()
                        .zip(&a[k..k + n])
                        .for_each(|(x, av)| *x = av * dv);
                    c += n;
                } else {
                    dst[0] = d[c - o * i];
                    c += 1;
                }
            }
        }
    }

    /// Per-example values of parameters `coords`, coordinate-major (`out[c * rows + e]`).
    /// Needs [`DenseTrace::prepare_blocks`] after the backward pass.
    pub fn block(&self, coords: std::ops::Range<usize>, out: &mut [f32]) {
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
        let (w, bias) = out.split_at_mut(o * i);
        matmul(
            o,
            b,
            i,
            d2,
            Layout::Transposed,
            a2,
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

    fn gram(&mut self, out: &mut [f32]) {
        let (b, i, o) = (self.rows, self.inputs, self.outputs);
        let aa = &mut self.scratch.0;
        aa.resize(b * b, 0.0);
        matmul(
            b,
            i,
            b,
            &self.input,
            Layout::Normal,
            &self.input,
            Layout::Transposed,
            aa,
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
        for (g, a) in out.iter_mut().zip(aa.iter()) {
            *g *= a + extra;
        }
    }

    fn group_sum(&mut self, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let (i, o) = (self.inputs, self.outputs);
        let (d, a) = (
            &self.delta[rows.start * o..rows.end * o],
            &self.input[rows.start * i..rows.end * i],
        );
        outer_product_sum(d, a, rows.len(), i, o, self.bias, out);
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
}
