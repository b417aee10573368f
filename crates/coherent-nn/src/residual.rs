//! Residual blocks `f(body(x) + shortcut(x))` (He et al. 2016), the shortcut being the
//! identity or a layer such as a strided 1x1 convolution. Where the body ends in a GroupNorm
//! without an activation of its own, as a ResNet's does, the sum is taken in that GroupNorm's
//! pass: its output is neither written, read back nor kept.

use crate::act::{Act, CpuTape, CHUNK};
use crate::fusion;
use crate::layer::{fixed_len, Layer};
use crate::switch::UNFUSED;
use crate::{Activation, GroupNorm};
use dfdx::prelude::{Merge, PutTape, SplitTape, Tape};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// A residual block. Its layers (the body's, then the shortcut's) are layers of the network.
#[derive(Debug)]
pub struct Residual {
    /// The body, then the shortcut if there is one.
    layers: Vec<Box<dyn Layer>>,
    /// Number of layers of the body.
    body: usize,
    activation: Option<Activation>,
    input_len: usize,
    output_len: usize,
    /// The sum's output, reused from pass to pass once nothing else holds it.
    output: Mutex<Arc<Vec<f32>>>,
}

impl Residual {
    /// A block on inputs of `input_len` features, or what does not fit.
    pub fn new(
        input_len: usize,
        body: Vec<Box<dyn Layer>>,
        shortcut: Option<Box<dyn Layer>>,
        activation: Option<Activation>,
    ) -> Result<Residual, String> {
        let mut width = input_len;
        for layer in &body {
            width = layer.output_len(width)?;
        }
        let skip = match &shortcut {
            Some(layer) => layer.output_len(input_len)?,
            None => input_len,
        };
        if skip != width {
            return Err(format!(
                "the body gives {width} features but the shortcut {skip}"
            ));
        }
        let body_len = body.len();
        let mut layers = body;
        layers.extend(shortcut);
        Ok(Residual {
            layers,
            body: body_len,
            activation,
            input_len,
            output_len: width,
            output: Mutex::default(),
        })
    }

    /// Features of one input example.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Features of one output example.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// The layers of the body.
    pub fn body(&self) -> &[Box<dyn Layer>] {
        &self.layers[..self.body]
    }

    /// The shortcut, or `None` for the identity.
    pub fn shortcut(&self) -> Option<&dyn Layer> {
        self.layers.get(self.body).map(|l| &**l)
    }

    /// The body's last layer where it takes the block's sum into its own pass: a GroupNorm
    /// without an activation of its own (as ResNets end their blocks), so that its output is
    /// never written and read back, nor kept.
    fn fused_tail(&self) -> Option<&GroupNorm> {
        if UNFUSED.is_on() {
            return None;
        }
        let last = self.body().last()?.as_any().downcast_ref::<GroupNorm>()?;
        last.takes_sums().then_some(last)
    }
}

impl Layer for Residual {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        fixed_len(input, self.input_len, self.output_len)
    }

    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let (mut cur, mut next) = (x.to_vec(), Vec::new());
        for layer in self.body() {
            layer.forward_slice(&cur, rows, &mut next);
            std::mem::swap(&mut cur, &mut next);
        }
        let skip = match self.shortcut() {
            Some(layer) => {
                layer.forward_slice(x, rows, &mut next);
                &next[..]
            }
            None => x,
        };
        out.clear();
        out.extend(cur.iter().zip(skip).map(|(a, b)| a + b));
        if let Some(f) = self.activation {
            f.apply_in_place(out);
        }
    }

    /// The input feeds both branches, whose tapes meet again at the sum, so the input's
    /// gradient collects both contributions.
    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let (x_tensor, tape) = x.tensor.split_tape();
        let (rows, cols) = (x.rows, x.cols);
        let into_body = Act {
            tensor: x_tensor.clone().put_tape(tape),
            data: x.data.clone(),
            grad: x.grad.clone(),
            rows,
            cols,
        };
        let tail = self.fused_tail();
        let before_tail = self.body().len() - usize::from(tail.is_some());
        let h = fusion::forward_all(&self.body()[..before_tail], into_body, input_needs_grad);
        let skip = Act {
            tensor: x_tensor.put_tape(CpuTape::default()),
            data: x.data,
            grad: x.grad,
            rows,
            cols,
        };
        let (skip, skip_needs_grad) = match self.shortcut() {
            Some(layer) => (layer.forward(skip, input_needs_grad), true),
            None => (skip, input_needs_grad),
        };
        let Some(tail) = tail else {
            return self.add(h, skip, skip_needs_grad);
        };
        let mut buffer = self.output.lock().expect("residual output lock");
        let needs_grad = before_tail > 0 || input_needs_grad;
        let h = tail.forward_into_sum(h, needs_grad, (&skip.data, self.activation), &mut buffer);
        let out = buffer.clone();
        drop(buffer);
        self.record_sum(h, skip, skip_needs_grad, out)
    }

    /// The body's layers, then the shortcut.
    fn sublayers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    fn sublayers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Residual {
    /// `f(a + b)` on the tape; `b` receives its gradient only when `b_needs_grad`.
    fn add(&self, a: Act<CpuTape>, b: Act<CpuTape>, b_needs_grad: bool) -> Act<CpuTape> {
        let activation = self.activation;
        let out = {
            let mut buffer = self.output.lock().expect("residual output lock");
            let out = Arc::make_mut(&mut buffer);
            out.resize(a.data.len(), 0.0);
            out.par_chunks_mut(CHUNK)
                .zip(a.data.par_chunks(CHUNK).zip(b.data.par_chunks(CHUNK)))
                .for_each(|(o, (x, y))| {
                    for ((o, x), y) in o.iter_mut().zip(x).zip(y) {
                        *o = x + y;
                    }
                    if let Some(f) = activation {
                        f.apply_in_place(o);
                    }
                });
            buffer.clone()
        };
        self.record_sum(a, b, b_needs_grad, out)
    }

    /// Records `out = f(a + b)`, already computed, on the tape; `b` receives its gradient only
    /// when `b_needs_grad`.
    fn record_sum(
        &self,
        a: Act<CpuTape>,
        b: Act<CpuTape>,
        b_needs_grad: bool,
        out: Arc<Vec<f32>>,
    ) -> Act<CpuTape> {
        let (rows, cols, activation) = (a.rows, a.cols, self.activation);
        let dev = a.tensor.device().clone();
        let (_, a_tape) = a.tensor.split_tape();
        let (_, b_tape) = b.tensor.split_tape();
        let y = Act::shared(&dev, out, rows, cols, CpuTape::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let (dy, output) = (y.grad.clone(), y.data.clone());
        let (da, db) = (a.grad, b_needs_grad.then_some(b.grad));
        y_tape.add_backward_op(move |_| {
            let mut dz = dy.take(rows * cols);
            let act = activation.map(|f| (f, &output[..]));
            match db {
                Some(db) => db.write_or_add(dz.len(), |g, first| {
                    pre_activation_grad_into(act, &mut dz, (g, first))
                }),
                None => crate::activation::pre_activation_grad(act, &mut dz),
            }
            da.add_owned(dz, add_into);
            Ok(())
        });
        Act {
            tensor: y_tensor.put_tape(a_tape.merge(b_tape).merge(y_tape)),
            ..y
        }
    }
}

/// `dz` through the activation's derivative as in
/// [`pre_activation_grad`](crate::activation::pre_activation_grad), and in the same pass
/// written (`first`) or added into `g`, chunk by chunk while it is in cache.
fn pre_activation_grad_into(
    act: Option<(Activation, &[f32])>,
    dz: &mut [f32],
    (g, first): (&mut [f32], bool),
) {
    g.par_chunks_mut(CHUNK)
        .zip(dz.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(k, (g, d))| {
            if let Some((f, y)) = act {
                f.backprop_from_output(&y[k * CHUNK..][..d.len()], d);
            }
            if first {
                g.copy_from_slice(d);
            } else {
                g.iter_mut().zip(&*d).for_each(|(g, d)| *g += d);
            }
        });
}

/// `g += d`, in parallel.
fn add_into(g: &mut [f32], d: &[f32]) {
    g.par_chunks_mut(CHUNK)
        .zip(d.par_chunks(CHUNK))
        .for_each(|(g, d)| g.iter_mut().zip(d).for_each(|(g, d)| *g += d));
}
