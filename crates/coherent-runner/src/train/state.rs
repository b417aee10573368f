//! The state of a run between steps besides the model and the optimizer, and its passage
//! through checkpoints.

use super::Trainer;
use crate::checkpoint::{Checkpoint, Header};
use crate::optim::Sgd;
use crate::plan::RunPlan;
use coherent_core::{AggregatorState, Rng};
use coherent_record::{files, remove_stale, MetricsLine, RecordError, Tracker};
use std::path::Path;

/// Everything that changes from step to step besides the model, the optimizer, the aggregator
/// and the observers.
pub struct Progress {
    /// The step about to run.
    pub step: usize,
    /// The shuffling generator.
    pub shuffle: Rng,
    /// The current epoch's order of training examples.
    pub order: Vec<usize>,
    /// Last and peak values for the summary.
    pub tracker: Tracker,
    /// Seconds of training before this attempt.
    pub elapsed_before: f64,
}

impl Progress {
    /// The state at step 0 of a run with `seed` over `n` training examples.
    pub fn new(seed: u64, n: usize) -> Progress {
        Progress {
            step: 0,
            shuffle: Rng::derived(seed, "shuffle"),
            order: (0..n).collect(),
            tracker: Tracker::default(),
            elapsed_before: 0.0,
        }
    }
}

impl Trainer<'_> {
    /// The checkpoint of the run as it stands.
    pub(super) fn checkpoint(&self) -> Checkpoint {
        let state = self.plan.aggregator.state();
        let p = &self.progress;
        Checkpoint {
            header: Header {
                manifest_hash: self.hash,
                step: p.step,
                shuffle: p.shuffle.state(),
                order: p.order.iter().map(|&i| i as u32).collect(),
                observers: self
                    .plan
                    .observers
                    .iter()
                    .map(|o| (o.name.clone(), o.observer.state()))
                    .collect(),
                elapsed_s: self.elapsed(),
                aggregator_numbers: state.numbers,
                metrics: self.run.mark(),
            },
            params: self
                .plan
                .model
                .params()
                .iter()
                .map(|p| p.to_vec())
                .collect(),
            velocity: self.sgd.velocity().to_vec(),
            aggregator_vectors: state.vectors,
        }
    }
}

/// An I/O-style error about the checkpoint of the run in `dir`.
pub fn invalid(dir: &Path, problem: impl Into<String>) -> RecordError {
    RecordError::malformed(&dir.join(files::CHECKPOINT), None, problem)
}

/// Puts the model, optimizer, aggregator, observers and progress back to the state of the
/// checkpoint `c` (checked and unpacked for this model); `kept` are the `metrics.jsonl` lines
/// before the checkpoint, replayed into the tracker of final and peak values. When the
/// aggregator or an observer refuses its state, the checkpoints are removed, so that the next
/// attempt starts the run over instead of failing again.
pub fn restore(
    plan: &mut RunPlan,
    sgd: &mut Sgd,
    progress: &mut Progress,
    c: Checkpoint,
    kept: &[MetricsLine],
    dir: &Path,
) -> Result<(), RecordError> {
    let refused = |e: String| {
        let _ = remove_stale(dir, &[files::CHECKPOINT, files::PREVIOUS_CHECKPOINT]);
        invalid(
            dir,
            format!("{e}; the checkpoints were removed, so the next attempt starts the run over"),
        )
    };
    let h = c.header;
    let mut params = plan.model.params_mut();
    let fits = params.len() == c.params.len()
        && params
            .iter()
            .zip(&c.params)
            .all(|(p, q)| p.len() == q.len())
        && h.order.len() == progress.order.len();
    if !fits {
        return Err(refused("it does not fit this run's model or data".into()));
    }
    for (p, q) in params.iter_mut().zip(&c.params) {
        p.copy_from_slice(q);
    }
    sgd.set_velocity(c.velocity);
    let state = AggregatorState {
        numbers: h.aggregator_numbers,
        vectors: c.aggregator_vectors,
    };
    plan.aggregator.restore(state).map_err(refused)?;
    let mut states = h.observers;
    for o in &mut plan.observers {
        let state = states.remove(&o.name).unwrap_or_default();
        o.observer
            .restore(state)
            .map_err(|e| refused(format!("observer `{}`: {e}", o.name)))?;
    }
    progress.step = h.step;
    progress.shuffle = Rng::from_state(h.shuffle);
    progress.order = h.order.iter().map(|&i| i as usize).collect();
    progress.elapsed_before = h.elapsed_s;
    for line in kept {
        let values = line.values.iter().map(|(k, v)| (k.as_str(), *v));
        progress.tracker.record(line.step, values);
    }
    Ok(())
}
