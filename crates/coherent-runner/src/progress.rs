//! The state of a run between steps besides the model and the optimizer, and its passage
//! through checkpoints.

use crate::checkpoint::{Checkpoint, Header};
use crate::early_stop::Point;
use crate::fractions::LossFractions;
use crate::learning::LearningTimes;
use crate::optim::Sgd;
use crate::record::RecordError;
use crate::summary::Tracker;
use coherent_core::{AggregatorState, GradientAggregator, Model, Rng};
use serde_json::Value;
use std::path::Path;

/// Everything that changes from step to step besides the model and the optimizer.
pub struct Progress {
    /// The step about to run.
    pub step: usize,
    /// The shuffling generator.
    pub shuffle: Rng,
    /// The current epoch's order of training examples.
    pub order: Vec<usize>,
    /// Loss-fraction sums, when measured.
    pub fractions: Option<LossFractions>,
    /// Learning-time streaks.
    pub learning: LearningTimes,
    /// Last and peak values for the summary.
    pub tracker: Tracker,
    /// The evaluations early stopping looks at.
    pub points: Vec<Point>,
    /// Seconds of training before this attempt.
    pub elapsed_before: f64,
}

impl Progress {
    /// Records one evaluation's values for the summary and the early-stopping analysis.
    pub fn record(&mut self, step: usize, values: &[(String, f64)]) {
        self.tracker.record(step, values);
        let get = |k: &str| values.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        self.points.push(Point {
            step,
            test_acc: get("test_acc"),
            corrupt_acc: get("corrupt_acc"),
            coherence: get("coherence"),
        });
    }

    /// The checkpoint of this state with the model's parameters, the optimizer's velocity and
    /// the aggregator's state.
    pub fn checkpoint(
        &self,
        manifest_hash: u64,
        elapsed_s: f64,
        model: &dyn Model,
        sgd: &Sgd,
        aggregator: &dyn GradientAggregator,
    ) -> Checkpoint {
        let state = aggregator.state();
        Checkpoint {
            header: Header {
                manifest_hash,
                step: self.step,
                shuffle: self.shuffle.state(),
                order: self.order.iter().map(|&i| i as u32).collect(),
                fractions: self.fractions.clone(),
                learning: self.learning.clone(),
                elapsed_s,
                aggregator_numbers: state.numbers,
                ..Header::default()
            },
            params: model.params().iter().map(|p| p.to_vec()).collect(),
            velocity: sgd.velocity().to_vec(),
            aggregator_vectors: state.vectors,
        }
    }

    /// Puts the model, optimizer, aggregator and progress back to the checkpoint's state;
    /// `kept` are the `metrics.jsonl` records before the checkpoint, replayed into the summary.
    pub fn restore(
        &mut self,
        model: &mut dyn Model,
        aggregator: &mut dyn GradientAggregator,
        sgd: &mut Sgd,
        c: Checkpoint,
        kept: &[Value],
        dir: &Path,
    ) -> Result<(), RecordError> {
        let h = c.header;
        let mut params = model.params_mut();
        let fits = params.len() == c.params.len()
            && params
                .iter()
                .zip(&c.params)
                .all(|(p, q)| p.len() == q.len())
            && h.order.len() == self.order.len();
        if !fits {
            return Err(invalid(
                dir,
                "does not fit this run's model or data; delete it to start the run again".into(),
            ));
        }
        for (p, q) in params.iter_mut().zip(&c.params) {
            p.copy_from_slice(q);
        }
        sgd.set_velocity(c.velocity);
        let state = AggregatorState {
            numbers: h.aggregator_numbers,
            vectors: c.aggregator_vectors,
        };
        aggregator.restore(state).map_err(|e| invalid(dir, e))?;
        self.step = h.step;
        self.shuffle = Rng::from_state(h.shuffle);
        self.order = h.order.iter().map(|&i| i as usize).collect();
        self.fractions = h.fractions;
        self.learning = h.learning;
        self.elapsed_before = h.elapsed_s;
        for record in kept {
            let Some(obj) = record.as_object() else {
                continue;
            };
            let step = record["step"].as_u64().unwrap_or(0) as usize;
            let values: Vec<(String, f64)> = obj
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "step" | "epoch" | "elapsed_s"))
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect();
            self.record(step, &values);
        }
        Ok(())
    }
}

/// An I/O-style error about the run's checkpoint.
pub fn invalid(dir: &Path, problem: String) -> RecordError {
    RecordError {
        path: dir.join(crate::checkpoint::FILE),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, problem),
    }
}
