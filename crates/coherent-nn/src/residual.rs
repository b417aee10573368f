//! Residual blocks `f(body(x) + shortcut(x))` (He et al. 2016), the shortcut being the
//! identity or an op such as a strided 1x1 convolution.

use crate::op::Op;
use crate::trace::Act;
use crate::Activation;
use dfdx::prelude::{Cpu, PutTape, SplitTape, Tape};

/// A residual block.
#[derive(Debug)]
pub struct Residual {
    body: Vec<Op>,
    shortcut: Option<Box<Op>>,
    activation: Option<Activation>,
    input_len: usize,
    output_len: usize,
}

impl Residual {
    /// A block on inputs of `input_len` features, or what does not fit.
    pub fn new(
        input_len: usize,
        body: Vec<Op>,
        shortcut: Option<Op>,
        activation: Option<Activation>,
    ) -> Result<Residual, String> {
        let mut width = input_len;
        for op in &body {
            width = op.output_len(width)?;
        }
        let skip = match &shortcut {
            Some(op) => op.output_len(input_len)?,
            None => input_len,
        };
        if skip != width {
            return Err(format!(
                "the body gives {width} features but the shortcut {skip}"
            ));
        }
        Ok(Residual {
            body,
            shortcut: shortcut.map(Box::new),
            activation,
            input_len,
            output_len: width,
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

    /// The ops of the body, then the shortcut's.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.body.iter().chain(self.shortcut.as_deref())
    }

    /// The ops of the body, then the shortcut's, mutably.
    pub fn ops_mut(&mut self) -> impl Iterator<Item = &mut Op> {
        self.body.iter_mut().chain(self.shortcut.as_deref_mut())
    }

    /// Forward pass on plain slices.
    pub fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let (mut cur, mut next) = (x.to_vec(), Vec::new());
        for op in &self.body {
            op.forward_slice(&cur, rows, &mut next);
            std::mem::swap(&mut cur, &mut next);
        }
        let skip = match &self.shortcut {
            Some(op) => {
                op.forward_slice(x, rows, &mut next);
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

    /// Forward pass recorded on the tape: the input feeds both branches, whose tapes meet again
    /// at the sum, so the input's gradient collects both contributions.
    pub fn forward<T: Tape<f32, Cpu>>(&self, x: Act<T>, input_needs_grad: bool) -> Act<T> {
        let (x_tensor, tape) = x.tensor.split_tape();
        let (rows, cols) = (x.rows, x.cols);
        let mut h = Act {
            tensor: x_tensor.clone().put_tape(tape),
            data: x.data.clone(),
            rows,
            cols,
        };
        for (k, op) in self.body.iter().enumerate() {
            h = op.forward(h, k > 0 || input_needs_grad);
        }
        let skip = Act {
            tensor: x_tensor.put_tape(T::default()),
            data: x.data,
            rows,
            cols,
        };
        let (skip, skip_needs_grad) = match &self.shortcut {
            Some(op) => (op.forward(skip, input_needs_grad), true),
            None => (skip, input_needs_grad),
        };
        add(h, skip, self.activation, skip_needs_grad)
    }
}

/// `f(a + b)` on the tape; `b` receives its gradient only when `b_needs_grad`.
fn add<T: Tape<f32, Cpu>>(
    a: Act<T>,
    b: Act<T>,
    activation: Option<Activation>,
    b_needs_grad: bool,
) -> Act<T> {
    let (rows, cols) = (a.rows, a.cols);
    let mut out: Vec<f32> = a
        .data
        .iter()
        .zip(b.data.iter())
        .map(|(x, y)| x + y)
        .collect();
    if let Some(f) = activation {
        f.apply_in_place(&mut out);
    }
    let dev = a.tensor.device().clone();
    let (a_tensor, a_tape) = a.tensor.split_tape();
    let (b_tensor, b_tape) = b.tensor.split_tape();
    let mut y = Act::new(&dev, out, rows, cols, T::default());
    let (y_tensor, mut y_tape) = y.tensor.split_tape();
    let (y_id, output) = (y_tensor.clone(), y.data.clone());
    y_tape.add_backward_op(move |grads| {
        let dy = grads.get_or_alloc_mut(&y_id)?;
        let mut dz = Vec::with_capacity(dy.len());
        crate::activation::pre_activation_grad(activation.map(|f| (f, &output[..])), dy, &mut dz);
        let da = grads.get_or_alloc_mut(&a_tensor)?;
        da.iter_mut().zip(&dz).for_each(|(g, d)| *g += d);
        if b_needs_grad {
            let db = grads.get_or_alloc_mut(&b_tensor)?;
            db.iter_mut().zip(&dz).for_each(|(g, d)| *g += d);
        }
        Ok(())
    });
    y.tensor = y_tensor.put_tape(a_tape.merge(b_tape).merge(y_tape));
    y
}
