//! The `RunObserver` trait: a research protocol that watches a run.
//!
//! The trainer trains; everything a study wants to know besides the metrics of a fixed sample
//! is an observer — which examples supply the loss reduction of each step, when each example
//! is learned, whether test accuracy peaks before corrupt labels are memorised, the coherence
//! of one class. An observer hooks into named points of the loop (the pattern of Keras and
//! Lightning callbacks):
//!
//! ```text
//! begin(run)                       once, before the first step (also after a resume)
//! per step:   needs(step)          extra gradient quantities for this step's backward pass
//!             after_step(step, g)  the step's gradients, before the update
//! per evaluation: on_evaluation(e, out)   per-example results; named values for metrics.jsonl
//! finish(end, out)                 its part of summary.json and its own files
//! state() / restore(state)         what a checkpoint keeps of it
//! ```
//!
//! Observers are plugins like the others: a crate implements the trait and submits an
//! [`crate::ObserverEntry`]; a manifest enables it with an `[[observers]]` table.

use crate::{BatchGrads, GradRequest, LayerInfo, Measurements, Model, Split};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// What an observer knows of the run it watches, given to [`RunObserver::begin`].
#[derive(Clone, Copy)]
pub struct RunInfo<'a> {
    /// The run's seed.
    pub seed: u64,
    /// The model's parameterised layers.
    pub layers: &'a [LayerInfo],
    /// The training split (labels as trained on, the clean labels and the corruption marks).
    pub train: &'a Split,
    /// The test split.
    pub test: &'a Split,
    /// How many training examples each evaluation covers: the first `evaluated` of the split.
    pub evaluated: usize,
    /// Optimisation steps per epoch.
    pub steps_per_epoch: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Number of model outputs (classes, or 1 for regression).
    pub outputs: usize,
}

impl<'a> RunInfo<'a> {
    /// A run over `train` and `test` (every training example evaluated) of a model with
    /// `layers` and `outputs` outputs, `total_steps` steps of one epoch: for driving an
    /// observer outside the trainer (its tests).
    pub fn new(
        seed: u64,
        layers: &'a [LayerInfo],
        data: &'a dyn crate::Dataset,
        total_steps: usize,
    ) -> RunInfo<'a> {
        RunInfo {
            seed,
            layers,
            train: data.train(),
            test: data.test(),
            evaluated: data.train().len(),
            steps_per_epoch: total_steps.max(1),
            total_steps,
            outputs: data.outputs(),
        }
    }
}

/// One optimisation step: its number and the training examples of its batch.
#[derive(Clone, Copy)]
pub struct StepInfo<'a> {
    /// The step (0-based).
    pub step: usize,
    /// Indices into the training split of the batch's examples; row `r` of the batch is
    /// example `indices[r]`.
    pub indices: &'a [usize],
    /// The training split.
    pub train: &'a Split,
}

/// The gradients of one step, seen by [`RunObserver::after_step`] before the update.
pub struct StepGrads<'a> {
    /// The batch's gradients (the summed gradient `sum`, per-example losses, and whatever the
    /// aggregator and the observers asked for).
    pub batch: &'a BatchGrads,
    /// The summed gradients of this observer's own [`GradRequest::subsets`], in its order.
    pub subsets: &'a [Vec<Vec<f32>>],
    /// The update direction the aggregator made of them (before learning rate and momentum).
    pub direction: &'a [Vec<f32>],
}

/// One evaluation point, seen by [`RunObserver::on_evaluation`].
pub struct Evaluation<'a> {
    /// The step (the model has made `step` updates).
    pub step: usize,
    /// Per-example losses of the evaluated training examples (the first
    /// [`RunInfo::evaluated`] of the split).
    pub train_losses: &'a [f32],
    /// Whether each evaluated training example is classified correctly (against the label it
    /// is trained on).
    pub train_correct: &'a [bool],
    /// Per-example losses of the test split.
    pub test_losses: &'a [f32],
    /// Whether each test example is classified correctly.
    pub test_correct: &'a [bool],
    /// Everything measured at this point before the observers: losses and accuracies, then
    /// the metrics due at this step.
    pub values: &'a Measurements,
    /// The model, for observers that measure something of their own (its weights must not be
    /// changed).
    pub model: &'a mut dyn Model,
    /// The training split.
    pub train: &'a Split,
}

impl<'a> Evaluation<'a> {
    /// An evaluation at `step` that measured `values` and evaluated no example one by one: for
    /// driving an observer outside the trainer (its tests).
    pub fn new(
        step: usize,
        values: &'a Measurements,
        model: &'a mut dyn Model,
        train: &'a Split,
    ) -> Evaluation<'a> {
        Evaluation {
            step,
            train_losses: &[],
            train_correct: &[],
            test_losses: &[],
            test_correct: &[],
            values,
            model,
            train,
        }
    }
}

/// How a run ended, given to [`RunObserver::finish`].
#[derive(Clone, Copy)]
pub struct RunEnd<'a> {
    /// Steps made.
    pub steps: usize,
    /// Whether the run diverged (a non-finite loss or update stopped it).
    pub diverged: bool,
    /// The training split.
    pub train: &'a Split,
}

/// What an observer adds to the run's record when it finishes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObserverOutput {
    /// Its part of `summary.json`, stored under the observer's registry name.
    pub summary: Option<Value>,
    /// Cells of its own in the comparison table of runs: `(heading, text)`.
    pub table: Vec<(String, String)>,
    /// Files of its own for the run directory: `(file name, contents)`.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A research protocol that watches a run through the hooks of the training loop (see the
/// module docs). Every hook has a default that does nothing, so an observer implements only
/// the ones it needs.
pub trait RunObserver: Send {
    /// Called once before training (and again when a resumed run continues, before
    /// [`RunObserver::restore`]); an `Err` explains why the observer cannot watch this run.
    fn begin(&mut self, run: &RunInfo<'_>) -> Result<(), String> {
        let _ = run;
        Ok(())
    }

    /// Extra gradient quantities this observer needs from the backward pass of `step`
    /// (for example [`GradRequest::subsets`]: the summed gradient of some of the batch's
    /// examples). The default asks for nothing.
    fn needs(&mut self, step: &StepInfo<'_>) -> GradRequest {
        let _ = step;
        GradRequest::SUM
    }

    /// Sees the gradients of `step` after aggregation, before the update.
    fn after_step(&mut self, step: &StepInfo<'_>, grads: &StepGrads<'_>) {
        let _ = (step, grads);
    }

    /// Sees an evaluation point and adds named values to its `metrics.jsonl` line.
    fn on_evaluation(&mut self, eval: &mut Evaluation<'_>, out: &mut Measurements) {
        let _ = (eval, out);
    }

    /// The run ended: the observer's summary and files.
    fn finish(&mut self, end: &RunEnd<'_>) -> ObserverOutput {
        let _ = end;
        ObserverOutput::default()
    }

    /// What a checkpoint keeps of the observer, so that a resumed run continues exactly.
    fn state(&self) -> Value {
        Value::Null
    }

    /// Restores a state saved by [`RunObserver::state`] (after [`RunObserver::begin`]).
    fn restore(&mut self, state: Value) -> Result<(), String> {
        match state {
            Value::Null => Ok(()),
            _ => Err("this observer keeps no state, but the checkpoint holds some".into()),
        }
    }
}

/// What a checkpoint keeps of an observer whose state is the serialisable `state`: the value
/// for [`RunObserver::state`].
///
/// # Panics
///
/// If `state` does not serialise to JSON (a map whose keys are not strings).
pub fn save_state(state: &impl Serialize) -> Value {
    serde_json::to_value(state).expect("an observer's state serialises")
}

/// A state saved by [`save_state`], read back for [`RunObserver::restore`]; the error says
/// why `state` is not an `S`.
pub fn load_state<S: DeserializeOwned>(state: Value) -> Result<S, String> {
    serde_json::from_value(state).map_err(|e| e.to_string())
}
