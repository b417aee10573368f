//! The `GradientAggregator` trait: how per-example gradients become one update direction.

use crate::{BatchGrads, GradRequest, LayerInfo, Model, PerExampleBlocks};

/// What an aggregator reads of a step: the batch's gradient quantities and, when it asked for
/// [`GradRequest::blocks`], the per-example gradients block by block.
#[derive(Clone, Copy)]
pub struct Gradients<'a> {
    /// The batch's quantities (the summed gradient, and whatever else was asked for).
    pub batch: &'a BatchGrads,
    /// The per-example gradients, when asked for.
    pub blocks: Option<&'a dyn PerExampleBlocks>,
}

impl<'a> Gradients<'a> {
    /// The per-example gradients.
    ///
    /// # Panics
    /// If the aggregator did not ask for them ([`GradRequest::blocks`] in its `needs`).
    pub fn blocks(&self) -> &'a dyn PerExampleBlocks {
        self.blocks
            .expect("the aggregator reads per-example blocks, so its needs() must ask for them")
    }

    /// Number of examples of the batch.
    pub fn batch_size(&self) -> usize {
        self.batch.batch_size
    }
}

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
    /// parameters) from the step's gradients.
    fn aggregate(&mut self, grads: &Gradients<'_>, direction: &mut [Vec<f32>]);
}

/// One aggregation as the training loop makes it: `aggregator` on the last backward pass of
/// `model` (whose gradients are `batch`), with the per-example blocks when `blocks` (the
/// aggregator asked for them), then its [`GradientAggregator::finish`] with the current
/// parameters.
pub fn aggregate_step(
    aggregator: &mut dyn GradientAggregator,
    model: &dyn Model,
    batch: &BatchGrads,
    blocks: bool,
    direction: &mut [Vec<f32>],
) {
    if blocks {
        model.per_example_blocks(&mut |src| {
            let g = Gradients {
                batch,
                blocks: Some(src),
            };
            aggregator.aggregate(&g, direction)
        });
    } else {
        let g = Gradients {
            batch,
            blocks: None,
        };
        aggregator.aggregate(&g, direction);
    }
    aggregator.finish(&model.params(), direction);
}
