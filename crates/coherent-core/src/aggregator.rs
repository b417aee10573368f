//! The `GradientAggregator` trait: how per-example gradients become one update direction.

use crate::{BatchGrads, GradRequest, LayerInfo, Model, PerExampleBlocks};
use std::ops::RangeInclusive;

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
    /// Examples per step (`[training] batch_size`).
    pub batch_size: usize,
    /// The fewest examples a step has: the last batch of an epoch when the training set is not
    /// a multiple of `batch_size` (else `batch_size`).
    pub smallest_batch: usize,
}

impl OptimizerSettings {
    /// Plain SGD at learning rate `lr` on batches of `batch_size` examples, all full.
    pub fn sgd(lr: f64, batch_size: usize) -> OptimizerSettings {
        OptimizerSettings {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            batch_size,
            smallest_batch: batch_size,
        }
    }

    /// The smallest batch of the run, in words, for messages: `a batch of 100 (`batch_size`)`,
    /// or `the last batch of each epoch, 50 examples (the training set is not a multiple of
    /// `batch_size = 100`)`.
    pub fn smallest_text(&self) -> String {
        if self.smallest_batch < self.batch_size {
            format!(
                "the last batch of each epoch, {} examples (the training set is not a multiple of `batch_size = {}`)",
                self.smallest_batch, self.batch_size
            )
        } else {
            format!("a batch of {} (`batch_size`)", self.batch_size)
        }
    }

    /// Accepts the settings when `value`, the aggregator's parameter `key`, is at most the end
    /// of `allowed` (a bound the run's smallest batch sets); otherwise refuses it at `key`:
    /// what `problem` says of the smallest batch in words ([`OptimizerSettings::smallest_text`]),
    /// then `` `key` must be in start..=end``, with `help`.
    pub fn check_batch_bound(
        self,
        key: &str,
        value: usize,
        allowed: RangeInclusive<usize>,
        problem: impl FnOnce(String) -> String,
        help: &str,
    ) -> Result<OptimizerSettings, Refusal> {
        if value <= *allowed.end() {
            return Ok(self);
        }
        let message = format!(
            "{}; `{key}` must be in {}..={}",
            problem(self.smallest_text()),
            allowed.start(),
            allowed.end()
        );
        Err(Refusal::at(key, message).with_help(help))
    }
}

/// Why an aggregator refuses the run's settings (see [`GradientAggregator::configure`]): the
/// key of its own table at fault, if one is, what is wrong, and what to do. The runner locates
/// it at that key of `[aggregator]` (or at the table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The parameter of the aggregator at fault (`b`), if one is.
    pub key: Option<String>,
    /// What is wrong (without the key).
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

impl Refusal {
    /// A refusal of the value of `key`.
    pub fn at(key: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            key: Some(key.to_string()),
            message: message.into(),
            help: None,
        }
    }

    /// Adds what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Refusal {
        self.help = Some(help.into());
        self
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal {
            key: None,
            message,
            help: None,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal::from(message.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "`{key}`: {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        match &self.help {
            Some(help) => write!(f, " ({help})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Refusal {}

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

    /// Checks the optimizer settings before training (at `coherent check` too) and returns the
    /// ones the optimizer should apply: an aggregator that applies weight decay itself (before
    /// buffering, say) returns `weight_decay = 0`. An `Err` explains why the settings cannot
    /// work with this aggregator: a parameter whose valid range depends on the batch size
    /// (`settings.batch_size`, and `settings.smallest_batch` of the last batch of an epoch) is
    /// refused here at its key ([`Refusal::at`]), never clamped.
    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, Refusal> {
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
