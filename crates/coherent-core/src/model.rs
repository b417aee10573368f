//! The `Model` trait: a network that produces per-example gradient quantities.

use crate::{Batch, BatchGrads, GradRequest, InputShape, LayerInfo, PerExampleBlocks};

/// The loss a model is trained with, chosen by the dataset's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Softmax cross-entropy over class logits; an example is correct when its largest logit is
    /// its label.
    CrossEntropy,
    /// Squared error `(f(x) - y)^2` on one real output; an example is correct when the sign of
    /// the output matches the sign of the target.
    Squared,
}

/// What a network plugin needs to know about the data to build a model.
#[derive(Clone, Copy, Debug)]
pub struct ModelSpec {
    /// Shape of one input.
    pub input: InputShape,
    /// Number of outputs (classes, or 1 for regression).
    pub outputs: usize,
    /// The loss.
    pub loss: LossKind,
    /// Seed for the initial weights.
    pub seed: u64,
}

impl ModelSpec {
    /// A classifier of `classes` classes on inputs of shape `input` (cross-entropy loss, seed 0).
    pub fn classifier(input: InputShape, classes: usize) -> ModelSpec {
        ModelSpec {
            input,
            outputs: classes,
            loss: LossKind::CrossEntropy,
            seed: 0,
        }
    }

    /// A classifier of ten classes on square images of `channels x side x side` (MNIST's
    /// `1, 28`, CIFAR-10's `3, 32`).
    pub fn ten_class_images(channels: usize, side: usize) -> ModelSpec {
        ModelSpec::classifier(InputShape::image(channels, side, side), 10)
    }

    /// The same with the initial weights drawn from `seed`.
    pub fn with_seed(self, seed: u64) -> ModelSpec {
        ModelSpec { seed, ..self }
    }
}

/// A trainable network whose per-example gradients are exact and cheap.
///
/// The contract: [`Model::forward_backward`] runs one forward and one backward pass of the
/// **summed** per-example loss over the batch and fills `out` with what `request` asks for
/// (see [`BatchGrads`] for the meaning of each field), layer by layer in the order of
/// [`Model::layers`]. Parameters are exposed layer by layer as flat slices in the same order
/// and layout as `BatchGrads::sum`, so optimizers and aggregators are written once, on slices.
///
/// Implementations live in `coherent-nn` (the layers) and `plugins/networks` (architectures).
pub trait Model: Send + Sync {
    /// The parameterised layers, in order.
    fn layers(&self) -> &[LayerInfo];

    /// The parameters of each layer, flattened (weights then bias).
    fn params(&self) -> Vec<&[f32]>;

    /// Mutable parameters of each layer, flattened (weights then bias).
    fn params_mut(&mut self) -> Vec<&mut [f32]>;

    /// Forward and backward pass of the summed loss over `batch`, computing what `request`
    /// asks for into `out`.
    fn forward_backward(&mut self, batch: &Batch, request: &GradRequest, out: &mut BatchGrads);

    /// Calls `f` with the per-example gradients of the last [`Model::forward_backward`],
    /// materialised block by block on demand. That pass must have asked for more than the
    /// summed gradient (e.g. [`GradRequest::blocks`]): a pass that asks for the sum alone may
    /// let go of what the per-example gradients are made from.
    fn per_example_blocks(&self, f: &mut dyn FnMut(&dyn PerExampleBlocks));

    /// Per-example losses and correctness, without gradients.
    fn evaluate(&self, batch: &Batch, losses: &mut Vec<f32>, correct: &mut Vec<bool>);

    /// Total number of parameters.
    fn num_params(&self) -> usize {
        self.layers().iter().map(|l| l.params).sum()
    }
}
