//! 2-D convolution `y = f(W * x + b)` (im2col + matrix products), with an optional fused
//! activation, as a custom op on dfdx's tape.
//!
//! Per example `i`, the input is unfolded into `U_i` (`T` output positions x `K = C_in k k`
//! patch values, stored transposed as `K x T`) and the output is `Y_i = W U_i^T + b`
//! (`C_out x T`, so rows stay in NCHW order). With `G_i` the gradient of the loss with respect
//! to the pre-activation output (`C_out x T`), the per-example weight gradient is
//! `g_i = G_i U_i` (`C_out x K`) and the bias gradient the sum of `G_i` over positions.
//!
//! The files split the layer by job: `geometry` (shapes), `unfold` (im2col and its adjoint
//! col2im), `forward` (the op and its backward pass on the tape), `trace` (what the backward
//! pass records, and the per-example quantities) and `norms` (per-example squared norms,
//! "ghost" or materialised). Where AVX-512 runs, the three products of an example (`W U_i`,
//! `G_i U_i` and `W^T G_i`) never unfold it whole: `implicit` takes its positions 32 at a
//! time, `padded` unfolds (and folds back) those slices from a zero-padded copy of the example,
//! and `tile` multiplies them in registers. Elsewhere the layer unfolds each example and calls
//! the general matrix product.

#[cfg(test)]
mod definition;
mod forward;
mod geometry;
mod implicit;
mod norms;
mod padded;
mod pooled;
mod tile;
mod trace;
mod transpose;
mod unfold;
mod wide;

pub use geometry::ConvGeometry;
pub use norms::NormMethod;
pub use unfold::{col2im, im2col};

use crate::act::{empty_buffer, Act, CpuTape};
use crate::grads::LayerGrads;
use crate::layer::{fixed_len, Layer};
use crate::{Activation, Init};
use coherent_core::{Rng, TensorInfo};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};
use trace::ConvTrace;

/// A 2-D convolution layer. Parameters: the weights (`C_out x C_in x k x k`, as PyTorch lays
/// them out) then the bias (`C_out`).
#[derive(Debug)]
pub struct Conv2d {
    geom: ConvGeometry,
    bias: bool,
    activation: Option<Activation>,
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<ConvTrace>>,
    /// The output buffer, reused from pass to pass once nothing else holds it.
    output: Mutex<Arc<Vec<f32>>>,
}

impl Conv2d {
    /// A layer of geometry `geom`, initialised with `init` (fan-in `C_in k k`).
    pub fn new(geom: ConvGeometry, bias: bool, init: Init, rng: &mut Rng) -> Conv2d {
        assert!(geom.is_valid(), "invalid convolution {geom:?}");
        let weights = geom.out_channels * geom.patch();
        let mut params = vec![0.0; weights + if bias { geom.out_channels } else { 0 }];
        let (w, b) = params.split_at_mut(weights);
        init.fill(w, b, geom.patch(), rng);
        Conv2d {
            geom,
            bias,
            activation: None,
            params: Arc::new(params),
            trace: Arc::default(),
            output: Mutex::default(),
        }
    }

    /// The same layer followed by `activation` (`None`: by none).
    pub fn with_activation(mut self, activation: impl Into<Option<Activation>>) -> Conv2d {
        self.activation = activation.into();
        self
    }

    /// Chooses how per-example norms are computed (tests and benchmarks compare the two).
    pub fn with_norm_method(self, method: NormMethod) -> Conv2d {
        self.trace().method = method;
        self
    }

    /// The geometry.
    pub fn geometry(&self) -> ConvGeometry {
        self.geom
    }

    /// Whether the layer has a bias.
    pub fn has_bias(&self) -> bool {
        self.bias
    }

    /// The fused activation, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.activation
    }

    pub(crate) fn trace(&self) -> RwLockWriteGuard<'_, ConvTrace> {
        self.trace.write().expect("conv trace lock")
    }
}

impl Layer for Conv2d {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        fixed_len(input, self.geom.input_len(), self.geom.output_len())
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        forward::on_tape(self, x, input_needs_grad)
    }

    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        forward::on_slices(self, x, rows, out);
    }

    fn kind(&self) -> Option<&'static str> {
        Some("conv2d")
    }

    fn name_prefix(&self) -> &'static str {
        "conv"
    }

    /// Weights then bias.
    fn params(&self) -> &[f32] {
        &self.params
    }

    /// `weight` `[C_out, C_in, k, k]` (as `nn.Conv2d` holds it: the patch order of
    /// [`im2col`] is channel, kernel row, kernel column), then `bias` `[C_out]`.
    fn tensors(&self) -> Vec<TensorInfo> {
        let g = self.geom;
        let shape = vec![g.out_channels, g.in_channels, g.kernel, g.kernel];
        let mut tensors = vec![TensorInfo::new("weight", shape)];
        if self.bias {
            tensors.push(TensorInfo::new("bias", vec![g.out_channels]));
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

    /// Lets go of the previous pass's input.
    fn release_input(&self) {
        self.trace().input = empty_buffer();
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
