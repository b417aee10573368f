//! Per-example learning times: the step at which each training example becomes, and stays,
//! correctly classified (Zielinski et al. 2020; Chatterjee & Zielinski 2022, "easy" examples
//! are learned early).
//!
//! The resolution is the evaluation interval: at every evaluation the runner passes the
//! correctness of each evaluated training example; an example's learning time is the first
//! evaluation step of its final unbroken run of correct evaluations, and it has none if it is
//! wrong at the last evaluation.

use coherent_core::{Split, Targets};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The start of each example's current streak of correct evaluations.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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

    /// `learning_times.csv`: `index,label,corrupted,learned_step` (empty when never learned).
    pub fn to_csv(&self, train: &Split) -> String {
        let mut out = String::from("index,label,corrupted,learned_step\n");
        for (i, t) in self.times().into_iter().enumerate() {
            let label = match &train.targets {
                Targets::Classes { labels, .. } => labels[i].to_string(),
                Targets::Values(v) => v[i].to_string(),
            };
            let when = t.map_or(String::new(), |s| s.to_string());
            let _ = writeln!(out, "{i},{label},{},{when}", train.corrupted[i] as u8);
        }
        out
    }
}

impl LearningTimes {
    /// The `learning_times` object of `summary.json`: the share of the evaluated examples
    /// learned by the end, and the median learning time of the pristine and the corrupt ones
    /// (over those learned).
    pub fn summary(&self, train: &Split) -> serde_json::Value {
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
        serde_json::json!({
            "examples": times.len(),
            "learned_fraction": learned as f64 / times.len().max(1) as f64,
            "pristine_median_step": median(false),
            "corrupt_median_step": median(true),
        })
    }
}

/// Examples ordered from earliest to latest learned; never-learned examples come last, ties
/// in index order.
pub fn order_by_learning_time(times: &[Option<usize>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| (times[i].is_none(), times[i].unwrap_or(0), i));
    order
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
    }

    #[test]
    fn order_puts_never_learned_last() {
        let order = order_by_learning_time(&[None, Some(30), Some(10), None, Some(10)]);
        assert_eq!(order, vec![2, 4, 1, 0, 3]);
    }
}
