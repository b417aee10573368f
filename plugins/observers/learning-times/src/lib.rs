//! Observer plugin `learning_times`: the step at which each training example becomes, and
//! stays, correctly classified (Zielinski et al. 2020; Chatterjee & Zielinski 2022: "easy"
//! examples, those with much in common with others, are learned early).
//!
//! The resolution is the evaluation interval: at every evaluation the observer sees whether
//! each evaluated training example is classified correctly; an example's learning time is the
//! first evaluation step of its final unbroken run of correct evaluations, and it has none if
//! it is wrong at the last evaluation.
//!
//! Writes `learning_times.csv` (`index,label,corrupted,learned_step`, see
//! `coherent_record::learning_times`) and adds to `summary.json` under `learning_times` the
//! share of the evaluated examples learned by the end and the median learning time of the
//! pristine and the corrupt ones (over those learned).

use coherent_core::{
    load_state, save_state, ConfigError, Evaluation, Measurements, ObserverEntry, ObserverOutput,
    PluginArgs, PluginConfig, RunEnd, RunObserver, Split, Targets,
};
use coherent_record::learning_times::{to_csv, LearningTime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

coherent_core::plugin_crate!();

/// Parameters of `learning_times` (none besides `enabled`, which the runner reads).
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct LearningTimesConfig {}

/// The start of each example's current streak of correct evaluations: the observer's state,
/// which a checkpoint keeps whole (and its messages call `State`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "State")]
pub struct LearningTimes {
    /// `streak[i]`: the step since which example `i` has been correct at every evaluation,
    /// `-1` while it is wrong.
    streak: Vec<i64>,
}

impl LearningTimes {
    /// Records the correctness of examples `0..correct.len()` at `step`.
    pub fn record(&mut self, step: usize, correct: &[bool]) {
        if self.streak.len() != correct.len() {
            self.streak = vec![-1; correct.len()];
        }
        for (s, &ok) in self.streak.iter_mut().zip(correct) {
            if !ok {
                *s = -1;
            } else if *s < 0 {
                *s = step as i64;
            }
        }
    }

    /// The learning time of each example (`None`: not learned by the last evaluation).
    pub fn times(&self) -> Vec<Option<usize>> {
        self.streak
            .iter()
            .map(|&s| (s >= 0).then_some(s as usize))
            .collect()
    }

    /// One row per evaluated example of `train`.
    pub fn rows(&self, train: &Split) -> Vec<LearningTime> {
        self.times()
            .into_iter()
            .enumerate()
            .map(|(i, learned_step)| LearningTime {
                index: i,
                label: match &train.targets {
                    Targets::Classes { labels, .. } => labels[i].to_string(),
                    Targets::Values(v) => v[i].to_string(),
                },
                corrupted: train.corrupted[i],
                learned_step,
            })
            .collect()
    }

    /// The `learning_times` part of `summary.json`.
    pub fn summary(&self, train: &Split) -> Value {
        let times = self.times();
        let learned = times.iter().filter(|t| t.is_some()).count();
        let median = |corrupt: bool| {
            let mut t: Vec<usize> = times
                .iter()
                .enumerate()
                .filter(|(i, _)| train.corrupted[*i] == corrupt)
                .filter_map(|(_, t)| *t)
                .collect();
            t.sort_unstable();
            (!t.is_empty()).then(|| t[t.len() / 2])
        };
        json!({
            "examples": times.len(),
            "learned_fraction": learned as f64 / times.len().max(1) as f64,
            "pristine_median_step": median(false),
            "corrupt_median_step": median(true),
        })
    }
}

impl RunObserver for LearningTimes {
    fn on_evaluation(&mut self, eval: &mut Evaluation<'_>, _out: &mut Measurements) {
        self.record(eval.step, eval.train_correct);
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> ObserverOutput {
        ObserverOutput {
            summary: Some(self.summary(end.train)),
            files: vec![(
                coherent_record::files::LEARNING_TIMES.to_string(),
                to_csv(&self.rows(end.train)).into_bytes(),
            )],
            ..ObserverOutput::default()
        }
    }

    fn state(&self) -> Value {
        save_state(self)
    }

    fn restore(&mut self, state: Value) -> Result<(), String> {
        load_state(state).map(|saved| *self = saved)
    }
}

/// Builds the `learning_times` observer from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn RunObserver>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<LearningTimesConfig, LearningTimes>()?,
    ))
}

coherent_core::register! {
    ObserverEntry {
        name: "learning_times",
        description: "The step at which each evaluated training example is learned for good (learning_times.csv), and the median learning time of pristine and corrupt examples.",
        params: LearningTimesConfig::params,
        build,
        default_on: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: scan the history backwards from the last evaluation.
    fn brute(history: &[(usize, Vec<bool>)], i: usize) -> Option<usize> {
        let mut since = None;
        for (step, correct) in history.iter().rev() {
            if !correct[i] {
                break;
            }
            since = Some(*step);
        }
        since
    }

    #[test]
    fn learning_time_is_the_start_of_the_final_correct_streak() {
        let mut rng = coherent_core::Rng::new(5);
        let mut history = Vec::new();
        let mut lt = LearningTimes::default();
        for k in 0..30 {
            let correct: Vec<bool> = (0..50)
                .map(|i| rng.uniform() < 0.3 + i as f64 / 80.0)
                .collect();
            lt.record(k * 10, &correct);
            history.push((k * 10, correct));
        }
        let times = lt.times();
        for (i, t) in times.iter().enumerate() {
            assert_eq!(*t, brute(&history, i), "example {i}");
        }
        assert!(times.iter().any(|t| t.is_none()) && times.iter().any(|t| t.is_some()));
        let mut back = LearningTimes::default();
        back.restore(lt.state()).unwrap();
        assert_eq!(back, lt);
    }

    #[test]
    fn summary_takes_medians_per_group() {
        let mut lt = LearningTimes::default();
        lt.record(0, &[false, true, false, false]);
        lt.record(10, &[true, true, false, true]);
        let mut train = Split::new(
            vec![0.0; 4],
            1,
            Targets::Classes {
                labels: vec![0, 1, 2, 3],
                classes: 4,
            },
        );
        train.corrupted = vec![false, false, true, true];
        let s = lt.summary(&train);
        assert_eq!(s["learned_fraction"], 0.75);
        assert_eq!(s["pristine_median_step"], 10);
        assert_eq!(s["corrupt_median_step"], 10);
        let rows = lt.rows(&train);
        assert_eq!(rows[1].learned_step, Some(0));
        assert_eq!(rows[2].learned_step, None);
        assert!(rows[3].corrupted);
    }
}
