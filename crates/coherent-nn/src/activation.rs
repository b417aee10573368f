//! Element-wise activations, as layers of their own or fused into the layer before.

use crate::act::{Act, CpuTape};
use crate::layer::Layer;
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
    pub fn apply_in_place(self, x: &mut [f32]) {
        match self {
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
        }
    }

    /// Appends `dy * f'(z)` to `dz`, from the output `y = f(z)`: for ReLU `f'(z) = [y > 0]`
    /// (0 at the kink), for tanh `1 - y^2`.
    pub fn backprop_from_output(self, y: &[f32], dy: &[f32], dz: &mut Vec<f32>) {
        match self {
            Activation::Relu => dz.extend(
                y.iter()
                    .zip(dy)
                    .map(|(y, d)| if *y > 0.0 { *d } else { 0.0 }),
            ),
            Activation::Tanh => dz.extend(y.iter().zip(dy).map(|(y, d)| d * (1.0 - y * y))),
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

/// The gradient with respect to the pre-activation values into `dz` (cleared first): `dy`
/// through the activation's derivative, from its output `y`, or `dy` itself without one.
pub fn pre_activation_grad(
    activation: Option<(Activation, &[f32])>,
    dy: &[f32],
    dz: &mut Vec<f32>,
) {
    dz.clear();
    match activation {
        Some((f, y)) => f.backprop_from_output(y, dy, dz),
        None => dz.extend_from_slice(dy),
    }
}
