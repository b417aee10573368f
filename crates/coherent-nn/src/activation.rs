//! Element-wise activations, as layers of their own or fused into the layer before.

use crate::act::{Act, CpuTape, CHUNK};
use crate::layer::Layer;
use rayon::prelude::*;
use serde::Deserialize;
use std::sync::Arc;

/// A pointwise non-linearity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, coherent_core::ParamType)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`; its derivative at exactly 0 is taken as 0 (as in PyTorch and dfdx).
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Applies the activation to every element.
    pub fn apply(self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match self {
            Activation::Relu => out.extend(x.iter().map(|v| v.max(0.0))),
            Activation::Tanh => out.extend(x.iter().map(|v| v.tanh())),
        }
    }

    /// Applies the activation in place.
    #[inline(always)]
    pub fn apply_in_place(self, x: &mut [f32]) {
        match self {
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
        }
    }

    /// `g = g * f'(z)`, from the output `y = f(z)`: for ReLU `f'(z) = [y > 0]` (0 at the
    /// kink), for tanh `1 - y^2`.
    #[inline(always)]
    pub fn backprop_from_output(self, y: &[f32], g: &mut [f32]) {
        let values = g.iter_mut().zip(y);
        match self {
            Activation::Relu => values.for_each(|(g, y)| *g = if *y > 0.0 { *g } else { 0.0 }),
            Activation::Tanh => values.for_each(|(g, y)| *g *= 1.0 - y * y),
        }
    }
}

impl Layer for Activation {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        Ok(input)
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let mut out = Vec::new();
        self.apply(&x.data, &mut out);
        let (input, output) = (x.data.clone(), Arc::new(out));
        let (f, cols) = (*self, x.cols);
        x.record(output.clone(), cols, input_needs_grad, move |dy, dx| {
            let Some(dx) = dx else { return };
            match f {
                Activation::Relu => {
                    for ((g, d), v) in dx.iter_mut().zip(dy).zip(input.iter()) {
                        if *v > 0.0 {
                            *g += d;
                        }
                    }
                }
                Activation::Tanh => {
                    for ((g, d), t) in dx.iter_mut().zip(dy).zip(output.iter()) {
                        *g += d * (1.0 - t * t);
                    }
                }
            }
        })
    }

    fn forward_slice(&self, x: &[f32], _rows: usize, out: &mut Vec<f32>) {
        self.apply(x, out);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `dy` becomes the gradient with respect to the pre-activation values: `dy` through the
/// activation's derivative, from its output `y` (in parallel), or `dy` itself without one.
pub fn pre_activation_grad(activation: Option<(Activation, &[f32])>, dy: &mut [f32]) {
    if let Some((f, y)) = activation {
        dy.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .for_each(|(g, y)| f.backprop_from_output(y, g));
    }
}
