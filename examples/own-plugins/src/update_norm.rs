//! Observer plugin `update_norm`: the length of the update directions between evaluations.
//!
//! After every step it adds up `|d|`, the norm of the direction the aggregator made (before
//! the learning rate); at every evaluation it writes their mean since the previous one as
//! `update_norm` in `metrics.jsonl`; at the end, the mean over the whole run goes into
//! `summary.json` and the comparison table. Its state is saved in checkpoints, so a resumed run
//! reports the same values.

use coherent_core::{
    squared_norm, ConfigError, Evaluation, Measurements, ObserverEntry, ObserverOutput, PluginArgs,
    PluginConfig, RunEnd, RunObserver, StepGrads, StepInfo,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Parameters of `update_norm`: none.
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct UpdateNormConfig {}

/// Sums of the update norms: since the last evaluation and over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateNorm {
    since: (f64, usize),
    total: (f64, usize),
}

fn mean((sum, n): (f64, usize)) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

impl RunObserver for UpdateNorm {
    fn after_step(&mut self, _step: &StepInfo<'_>, grads: &StepGrads<'_>) {
        let sq = squared_norm(grads.direction);
        for part in [&mut self.since, &mut self.total] {
            *part = (part.0 + sq.sqrt(), part.1 + 1);
        }
    }

    fn on_evaluation(&mut self, _eval: &mut Evaluation<'_>, out: &mut Measurements) {
        if let Some(m) = mean(self.since) {
            out.push("update_norm", m);
        }
        self.since = (0.0, 0);
    }

    fn finish(&mut self, _end: &RunEnd<'_>) -> ObserverOutput {
        let m = mean(self.total);
        ObserverOutput {
            summary: Some(json!({ "mean": m, "steps": self.total.1 })),
            table: vec![(
                "mean |update|".into(),
                m.map_or("-".into(), |m| format!("{m:.4}")),
            )],
            files: vec![],
        }
    }

    fn state(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn restore(&mut self, state: Value) -> Result<(), String> {
        *self = serde_json::from_value(state).map_err(|e| format!("update_norm state: {e}"))?;
        Ok(())
    }
}

/// Builds the `update_norm` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn RunObserver>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<UpdateNormConfig, UpdateNorm>()?,
    ))
}

coherent_core::register! {
    ObserverEntry {
        name: "update_norm",
        description: "Mean norm of the update directions since the previous evaluation (metrics.jsonl) and over the run (summary).",
        params: UpdateNormConfig::params,
        build,
        default_on: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::{BatchGrads, InputShape, ModelSpec, Split, Targets};

    /// Steps with known directions, evaluations in between: each reported mean is the mean of
    /// the norms of its steps, computed here by hand; a restored copy carries on identically.
    #[test]
    fn reports_the_mean_norm_between_evaluations() {
        let train = Split::new(vec![0.0; 2], 1, Targets::Values(vec![0.0; 2]));
        let batch = BatchGrads::default();
        let spec = ModelSpec::classifier(InputShape::flat(1), 2);
        let mut model = crate::fourier_net::build(&PluginArgs::empty(), &spec).unwrap();
        let step = |obs: &mut UpdateNorm, direction: Vec<Vec<f32>>| {
            let info = StepInfo {
                step: 0,
                indices: &[],
                train: &train,
            };
            let grads = StepGrads {
                batch: &batch,
                subsets: &[],
                direction: &direction,
            };
            obs.after_step(&info, &grads);
        };
        let evaluate = |obs: &mut UpdateNorm, model: &mut dyn coherent_core::Model| {
            let (values, mut out) = (Measurements::new(true), Measurements::new(true));
            obs.on_evaluation(&mut Evaluation::new(0, &values, model, &train), &mut out);
            out.get("update_norm")
        };
        let mut obs = UpdateNorm::default();
        step(&mut obs, vec![vec![3.0], vec![4.0]]); // |d| = 5
        step(&mut obs, vec![vec![0.0, 1.0], vec![]]); // |d| = 1
        assert_eq!(evaluate(&mut obs, model.as_mut()), Some(3.0));
        assert_eq!(evaluate(&mut obs, model.as_mut()), None, "no step since");
        let mut resumed = UpdateNorm::default();
        resumed.restore(obs.state()).unwrap();
        step(&mut resumed, vec![vec![2.0]]);
        assert_eq!(evaluate(&mut resumed, model.as_mut()), Some(2.0));
        let end = RunEnd {
            steps: 3,
            diverged: false,
            train: &train,
        };
        let summary = resumed.finish(&end).summary.unwrap();
        assert_eq!(summary, json!({ "mean": 8.0 / 3.0, "steps": 3 }));
    }
}
