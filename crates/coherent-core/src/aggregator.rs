//! The `GradientAggregator` trait: how per-example gradients become one update direction.

use crate::{BatchGrads, GradRequest, LayerInfo, PerExampleBlocks};

/// The optimizer settings of a run, as an aggregator sees them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerSettings {
    /// Learning rate.
    pub lr: f64,
    /// Momentum coefficient.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
}

/// What an aggregator carries from one step to the next, for checkpoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AggregatorState {
    /// Integers (counters, generator states).
    pub numbers: Vec<u64>,
    /// Vectors (buffered gradients), in an order the aggregator defines.
    pub vectors: Vec<Vec<f32>>,
}

/// Turns the per-example gradients of a batch into the descent direction for the batch-mean
/// loss. The plain-SGD aggregator returns `S / B`; suppression strategies (winsorization,
/// medians of means, clipping, ...) replace the mean with a robust estimate.
///
/// The optimizer (learning rate, momentum, weight decay) is applied afterwards by the runner.
pub trait GradientAggregator: Send {
    /// What the aggregator needs from the backward pass.
    fn needs(&self) -> GradRequest;

    /// Checks the optimizer settings before training and returns the ones the optimizer should
    /// apply: an aggregator that applies weight decay itself (before buffering, say) returns
    /// `weight_decay = 0`. An `Err` explains why the settings cannot work with this aggregator.
    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, String> {
        Ok(settings)
    }

    /// Called after [`GradientAggregator::aggregate`] with the current parameters, before the
    /// update; the default does nothing.
    fn finish(&mut self, params: &[&[f32]], direction: &mut [Vec<f32>]) {
        let _ = (params, direction);
    }

    /// The state the aggregator carries from step to step (a buffer of past gradients, a noise
    /// generator), saved in checkpoints; the default is none.
    fn state(&self) -> AggregatorState {
        AggregatorState::default()
    }

    /// Restores a state saved by [`GradientAggregator::state`] (after
    /// [`GradientAggregator::begin`]), so that a resumed run continues exactly.
    fn restore(&mut self, state: AggregatorState) -> Result<(), String> {
        if state == AggregatorState::default() {
            Ok(())
        } else {
            Err("this aggregator keeps no state, but the checkpoint holds some".into())
        }
    }

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
