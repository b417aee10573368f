//! Dense (fully connected) layer `y = f(A W^T + b)`, with an optional fused activation `f`, as
//! a custom op on dfdx's tape.

mod trace;

use trace::DenseTrace;

use crate::act::{empty_buffer, Act, CpuTape};
use crate::grads::LayerGrads;
use crate::kernels::{matmul, Layout, Mat};
use crate::layer::{fixed_len, Layer};
use crate::{Activation, Init};
use coherent_core::{Rng, TensorInfo};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};

/// A dense layer with `inputs -> outputs` features, an optional bias and an optional fused
/// activation.
///
/// Parameters are one flat vector: the weights `W` (`outputs x inputs`, row-major) then the
/// bias `b` (`outputs`). The backward pass records the layer input `A` and the gradient
/// `Delta` of the loss with respect to the pre-activation output in a `DenseTrace`, from which
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

    /// The same layer followed by `activation` (`None`: by none).
    pub fn with_activation(mut self, activation: impl Into<Option<Activation>>) -> Dense {
        self.activation = activation.into();
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

    fn trace(&self) -> RwLockWriteGuard<'_, DenseTrace> {
        self.trace.write().expect("dense trace lock")
    }
}

impl Layer for Dense {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        fixed_len(input, self.inputs, self.outputs)
    }

    /// `out = f(x W^T + b)` for `rows` examples.
    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
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
            (rows, i, o),
            Mat {
                data: x,
                layout: Layout::Normal,
            },
            Mat {
                data: &self.params[..o * i],
                layout: Layout::Transposed,
            },
            out,
            true,
        );
        if let Some(f) = self.activation {
            f.apply_in_place(out);
        }
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let rows = x.rows;
        let out = {
            let mut buffer = self.output.lock().expect("dense output lock");
            self.forward_slice(&x.data, rows, Arc::make_mut(&mut buffer));
            buffer.clone()
        };
        let (trace, params, input) = (self.trace.clone(), self.params.clone(), x.data.clone());
        let (i, o, bias, activation) = (self.inputs, self.outputs, self.bias, self.activation);
        let output = activation.map(|_| out.clone());
        x.then(out, o, input_needs_grad, move |mut dy, dx| {
            let mut tr = trace.write().expect("dense trace lock");
            let tr = &mut *tr;
            let act = activation.zip(output.as_deref().map(Vec::as_slice));
            crate::activation::pre_activation_grad(act, &mut dy);
            tr.delta = dy;
            tr.record(input, rows, i, o, bias);
            if let Some(dx) = dx {
                dx.add_with(|dx| {
                    matmul(
                        (rows, o, i),
                        Mat {
                            data: &tr.delta,
                            layout: Layout::Normal,
                        },
                        Mat {
                            data: &params[..o * i],
                            layout: Layout::Normal,
                        },
                        dx,
                        true,
                    )
                });
            }
        })
    }

    fn kind(&self) -> Option<&'static str> {
        Some("dense")
    }

    fn name_prefix(&self) -> &'static str {
        "fc"
    }

    /// Weights then bias.
    fn params(&self) -> &[f32] {
        &self.params
    }

    /// `weight` `[out, in]` (row-major, as `nn.Linear` holds it), then `bias` `[out]`.
    fn tensors(&self) -> Vec<TensorInfo> {
        let mut tensors = vec![TensorInfo::new("weight", vec![self.outputs, self.inputs])];
        if self.bias {
            tensors.push(TensorInfo::new("bias", vec![self.outputs]));
        }
        tensors
    }

    /// Copies only if a tape still holds the old values.
    fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    fn grads(&self) -> Option<Box<dyn LayerGrads + '_>> {
        Some(Box::new(self.trace()))
    }

    fn release_input(&self) {
        self.trace().input = empty_buffer();
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
