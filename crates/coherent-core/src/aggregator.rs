//! The `GradientAggregator` trait: how per-example gradients become one update direction.

use crate::{BatchGrads, GradRequest, LayerInfo, PerExampleBlocks};

/// Turns the per-example gradients of a batch into the descent direction for the batch-mean
/// loss. The plain-SGD aggregator returns `S / B`; suppression strategies (winsorization,
/// medians of means, clipping, ...) replace the mean with a robust estimate.
///
/// The optimizer (learning rate, momentum, weight decay) is applied afterwards by the runner.
pub trait GradientAggregator: Send {
    /// What the aggregator needs from the backward pass.
    fn needs(&self) -> GradRequest;

    /// Called once before training with the model's layers.
    fn begin(&mut self, layers: &[LayerInfo]) {
        let _ = layers;
    }

    /// Writes the direction into `direction` (one slice per layer, sized like the layer's
    /// parameters). `blocks` gives the per-example gradients when [`GradRequest::blocks`] was
    /// asked for, and is `None` otherwise.
    fn aggregate(
        &mut self,
        grads: &BatchGrads,
        blocks: Option<&dyn PerExampleBlocks>,
        direction: &mut [Vec<f32>],
    );
}
