//! The [`Layer`] trait: what a network is built from, inside or outside this crate.
//!
//! # What a layer is
//!
//! A layer maps a batch of activations, `rows x inputs` with one example per row (image tensors
//! in channel-height-width order, so flattening is implicit), to `rows x outputs`. It works on
//! each example on its own: example `i`'s output depends on example `i`'s input only (this is
//! why normalisation here is GroupNorm, never BatchNorm). A network ([`crate::Sequential`])
//! holds `Vec<Box<dyn Layer>>` and names its parameterised layers from their
//! [`Layer::name_prefix`] and a running number per prefix (`fc1`, `conv2`, `norm3`, ...).
//!
//! Every layer provides its output size ([`Layer::output_len`]), a forward pass on dfdx's tape
//! ([`Layer::forward`]) and one on plain slices, for evaluation without gradients
//! ([`Layer::forward_slice`]). A layer with parameters also provides its kind, its flat
//! parameters and, after a backward pass, its per-example quantities ([`Layer::grads`]). A
//! container (a residual block) lists its layers in [`Layer::sublayers`]: they are layers of
//! the network, in order, and the container has no parameters of its own.
//!
//! # How per-example quantities are recorded
//!
//! The engine runs one forward and one backward pass of the *summed* loss `L = sum_i l_i`.
//! In its backward op a parameterised layer sees its input `A` (`rows x inputs`, kept from the
//! forward pass) and `Delta = dL / dY`, the gradient with respect to its output (`rows x
//! outputs`; for a layer with a fused activation, with respect to the pre-activation output).
//! Because examples do not mix, row `i` of `Delta` is `dl_i / dY_i`, and example `i`'s
//! parameter gradient `g_i` is a function of `A_i` and `Delta_i` alone: for a dense layer
//! `g_i = Delta_i A_i^T`, for a convolution `g_i = G_i U_i` (`U_i` the unfolded input). So
//! every per-example quantity follows exactly from `A` and `Delta`, without a backward pass per
//! example (Goodfellow 2015, "Efficient per-example gradient computations"; BackPACK, Dangel
//! et al. 2020; Opacus). Some never materialise `g_i`: `|g_i|^2 = |Delta_i|^2 |A_i|^2` and
//! `g_i . g_j = (A_i . A_j)(Delta_i . Delta_j)` for a dense layer without bias, the "ghost"
//! norms of a convolution (Li et al. 2022).
//!
//! The backward op is a `'static` closure on the tape, so the layer shares its record (its
//! "trace") with it through an `Arc<RwLock<_>>`; the closure fills the trace (`A`, `Delta`, or
//! the per-example gradients themselves, and their sum) and [`Layer::grads`] returns the locked
//! trace as [`LayerGrads`]. The engine reads the summed gradient and whatever the
//! [`coherent_core::GradRequest`] asks for from there.
//!
//! # Writing a layer outside this crate
//!
//! Implement [`Layer`] for your type. In [`Layer::forward`], compute the output from
//! `x.data`, then call [`crate::Act::record`] with a closure that receives `Delta` and the input
//! gradient to add into; in it, write each example's gradient into a [`crate::MatrixTrace`]
//! (shared as `Arc<RwLock<MatrixTrace>>`) and add `dL/dA` into the input gradient. Keep the
//! parameters in an `Arc<Vec<f32>>` and hand the closure a clone, so that it reads the values
//! of its own pass. Return `Some(Box::new(trace.write().unwrap()))` from [`Layer::grads`], your
//! kind from [`Layer::kind`] (the prefix of the layer's name defaults to it) and the
//! parameters from [`Layer::params`] and [`Layer::params_mut`] (their names and shapes from
//! [`Layer::tensors`], if they are more than one flat tensor). A layer whose per-example
//! gradients are too large to hold as a matrix implements [`LayerGrads`] on its own trace
//! instead, as the dense and convolution layers do.
//!
//! Then put the layer in a [`crate::Sequential`], a [`crate::Residual`] or a
//! [`crate::NetworkBuilder`] like any other, and check every quantity against
//! [`crate::reference::per_example_by_loop`] (batches of one) and the summed gradient against
//! finite differences of the loss (batches of one run the layer's own backward pass, so only
//! the differences check that). `crates/coherent-nn/tests/custom_layer.rs` does all of this for
//! a per-feature affine layer.

use crate::act::{Act, CpuTape};
use crate::grads::LayerGrads;
use coherent_core::TensorInfo;
use std::any::Any;

/// One layer of a network: a differentiable map from `rows x inputs` to `rows x outputs`
/// activations, example by example (see the [module documentation](self)).
///
/// Object safe: networks hold `Box<dyn Layer>`.
pub trait Layer: std::fmt::Debug + Send + Sync {
    /// Features per example after this layer for `input` features before it, or what does not
    /// fit, in words (`"expects 784 input features, receives 100"`).
    fn output_len(&self, input: usize) -> Result<usize, String>;

    /// Forward pass recorded on the tape; the backward op it adds computes the input gradient
    /// when `input_needs_grad` (false for a network's first layer, whose input gradient nobody
    /// reads) and records the layer's per-example quantities.
    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape>;

    /// Forward pass on plain slices, without gradients: `out` becomes the `rows x outputs`
    /// output of the `rows x inputs` input `x`.
    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>);

    /// The kind of a parameterised layer, reported as [`coherent_core::LayerInfo::kind`]
    /// (`"dense"`, `"conv2d"`, `"group_norm"`, ...), or `None` (the default) for a layer
    /// without parameters (activations, pooling, containers). A layer that returns `Some` also
    /// provides [`Layer::params`], [`Layer::params_mut`] and [`Layer::grads`].
    fn kind(&self) -> Option<&'static str> {
        None
    }

    /// What the names of layers like this one start with: the network numbers them per prefix
    /// (`fc1`, `fc2`, ...). Defaults to the kind.
    fn name_prefix(&self) -> &'static str {
        self.kind().unwrap_or("layer")
    }

    /// The flat parameters, laid out like the gradients of [`Layer::grads`] (weights then
    /// bias). Empty by default.
    fn params(&self) -> &[f32] {
        &[]
    }

    /// The flat parameters, mutably.
    fn params_mut(&mut self) -> &mut [f32] {
        &mut []
    }

    /// The parameters as named tensors in the order of the flat parameters, each in
    /// row-major layout, their sizes adding up to the number of parameters: what weights files
    /// hold (`<layer>.<tensor>`, e.g. `fc1.weight`). Layers use PyTorch's names and layouts
    /// where PyTorch has the layer (a dense layer: `weight` `[out, in]`, then `bias` `[out]`).
    /// The default is one flat tensor `weight` `[params]`.
    fn tensors(&self) -> Vec<TensorInfo> {
        vec![TensorInfo::new("weight", vec![self.params().len()])]
    }

    /// The summed and per-example gradients of the last backward pass: exclusive access to
    /// the layer's trace (a lock guard) until dropped. `None` for a layer without parameters.
    fn grads(&self) -> Option<Box<dyn LayerGrads + '_>> {
        None
    }

    /// Lets go of the previous pass's input, so that the layer before can reuse its output
    /// buffer instead of allocating a new one. Called on every layer before a pass; the default
    /// does nothing.
    fn release_input(&self) {}

    /// The layers inside a container, in order (a residual block: its body, then its
    /// shortcut). Their parameterised layers are layers of the network. Empty by default.
    fn sublayers(&self) -> &[Box<dyn Layer>] {
        &[]
    }

    /// The layers inside a container, mutably.
    fn sublayers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut []
    }

    /// The layer as [`Any`], to recognise its concrete type (write `self`).
    fn as_any(&self) -> &dyn Any;
}

impl dyn Layer {
    /// The layer as a `L`, if it is one.
    pub fn downcast_ref<L: Layer + 'static>(&self) -> Option<&L> {
        self.as_any().downcast_ref()
    }
}

/// [`Layer::output_len`] of a layer that reads `expects` features and writes `gives`.
pub(crate) fn fixed_len(input: usize, expects: usize, gives: usize) -> Result<usize, String> {
    if input == expects {
        Ok(gives)
    } else {
        Err(format!(
            "expects {expects} input features, receives {input}"
        ))
    }
}

/// The parameterised layers among `layers` and inside their containers, in order.
pub(crate) fn parameterised<'a>(layers: &'a [Box<dyn Layer>], out: &mut Vec<&'a dyn Layer>) {
    for layer in layers {
        if layer.kind().is_some() {
            out.push(&**layer);
        } else {
            parameterised(layer.sublayers(), out);
        }
    }
}

/// The parameters of every parameterised layer among `layers`, in the same order.
pub(crate) fn params_mut<'a>(layers: &'a mut [Box<dyn Layer>], out: &mut Vec<&'a mut [f32]>) {
    for layer in layers {
        if layer.kind().is_some() {
            out.push(layer.params_mut());
        } else {
            params_mut(layer.sublayers_mut(), out);
        }
    }
}

/// Calls [`Layer::release_input`] on every layer among `layers` and inside their containers.
pub(crate) fn release_inputs(layers: &[Box<dyn Layer>]) {
    for layer in layers {
        layer.release_input();
        release_inputs(layer.sublayers());
    }
}
