//! Observer plugin `early_stopping`: under label noise, does test accuracy peak before the
//! corrupt examples are memorised? (Chatterjee 2020; Zielinski et al. 2020.)
//!
//! From the evaluations of a run: the step of peak test accuracy, and the step at which the
//! accuracy on the corrupt training examples (against their corrupted labels) starts to rise,
//! defined as the first evaluation at which it exceeds its running minimum by more than
//! `corrupt_rise` (absolute accuracy). The value of `quantity` (by default the m-coherence of
//! the `coherence` metric) at the evaluation nearest to each step shows what the gradients
//! looked like there.
//!
//! Adds `early_stopping` to `summary.json` (`peak_test_step`, `peak_test_acc`,
//! `corrupt_acc_at_peak_test`, `final_test_acc`, `corrupt_rise_step`, `corrupt_rise_threshold`,
//! `test_acc_at_corrupt_rise`, `<quantity>_at_peak_test`, `<quantity>_at_corrupt_rise`,
//! `peak_before_rise`) and the cells `peak test (step)` and `corrupt rise` to the comparison
//! table.

use coherent_core::{
    load_state, save_state, ConfigError, Evaluation, Measurements, ObserverEntry, ObserverOutput,
    PluginArgs, PluginConfig, RunEnd, RunObserver,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

coherent_core::plugin_crate!();

/// Parameters of `early_stopping`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// Accuracy by which the corrupt examples' accuracy must exceed its running minimum to
    /// count as starting to rise, in (0, 1).
    #[serde(default = "five_points")]
    pub corrupt_rise: f64,
    /// The quantity reported at the peak and at the rise.
    #[serde(default = "coherence")]
    pub quantity: String,
}

fn five_points() -> f64 {
    0.05
}

fn coherence() -> String {
    "coherence".into()
}

/// One evaluation point: the values early stopping looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The step.
    pub step: usize,
    /// Test accuracy.
    pub test_acc: Option<f64>,
    /// Accuracy on the corrupt training examples.
    pub corrupt_acc: Option<f64>,
    /// The reported quantity.
    pub quantity: Option<f64>,
}

/// The observer: the points seen so far are its state.
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    config: EarlyStoppingConfig,
    points: Vec<Point>,
}

/// What a checkpoint keeps of [`EarlyStopping`].
#[derive(Serialize, Deserialize)]
struct State {
    points: Vec<Point>,
}

/// The first step at which `corrupt_acc` exceeds its running minimum by more than `threshold`.
pub fn corrupt_rise_step(points: &[Point], threshold: f64) -> Option<usize> {
    let mut low = f64::INFINITY;
    for p in points {
        let Some(v) = p.corrupt_acc else { continue };
        if v - low > threshold {
            return Some(p.step);
        }
        low = low.min(v);
    }
    None
}

/// The value of `f` at the point nearest to `step` that has one.
fn nearest(points: &[Point], step: usize, f: impl Fn(&Point) -> Option<f64>) -> Option<f64> {
    points
        .iter()
        .filter_map(|p| f(p).map(|v| (p.step.abs_diff(step), v)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

impl EarlyStopping {
    /// The `early_stopping` part of `summary.json` and its table cells, or `None` without test
    /// accuracies.
    pub fn analyse(&self) -> Option<(Value, Vec<(String, String)>)> {
        let points = &self.points;
        let (peak_step, peak) = points
            .iter()
            .filter_map(|p| p.test_acc.map(|v| (p.step, v)))
            .fold(None, |best: Option<(usize, f64)>, (s, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((s, v)),
            })?;
        let threshold = self.config.corrupt_rise;
        let rise = corrupt_rise_step(points, threshold);
        let at = |step: Option<usize>, f: fn(&Point) -> Option<f64>| {
            step.and_then(|s| nearest(points, s, f))
        };
        let q = &self.config.quantity;
        let mut part = Map::new();
        part.insert("peak_test_step".into(), json!(peak_step));
        part.insert("peak_test_acc".into(), json!(peak));
        part.insert(
            "corrupt_acc_at_peak_test".into(),
            json!(at(Some(peak_step), |p| p.corrupt_acc)),
        );
        part.insert(
            "final_test_acc".into(),
            json!(points.iter().rev().find_map(|p| p.test_acc)),
        );
        part.insert("corrupt_rise_step".into(), json!(rise));
        part.insert("corrupt_rise_threshold".into(), json!(threshold));
        part.insert(
            "test_acc_at_corrupt_rise".into(),
            json!(at(rise, |p| p.test_acc)),
        );
        part.insert(
            format!("{q}_at_peak_test"),
            json!(at(Some(peak_step), |p| p.quantity)),
        );
        part.insert(
            format!("{q}_at_corrupt_rise"),
            json!(at(rise, |p| p.quantity)),
        );
        part.insert(
            "peak_before_rise".into(),
            json!(rise.map(|r| peak_step <= r)),
        );
        let cells = vec![
            (
                "peak test (step)".to_string(),
                format!("{peak:.3} ({peak_step})"),
            ),
            (
                "corrupt rise".to_string(),
                rise.map_or("-".into(), |s| s.to_string()),
            ),
        ];
        Some((Value::Object(part), cells))
    }
}

impl RunObserver for EarlyStopping {
    fn on_evaluation(&mut self, eval: &mut Evaluation<'_>, _out: &mut Measurements) {
        let v = eval.values;
        self.points.push(Point {
            step: eval.step,
            test_acc: v.get("test_acc"),
            corrupt_acc: v.get("corrupt_acc"),
            quantity: v.get(&self.config.quantity),
        });
    }

    fn finish(&mut self, _end: &RunEnd<'_>) -> ObserverOutput {
        match self.analyse() {
            Some((summary, table)) => ObserverOutput {
                summary: Some(summary),
                table,
                ..ObserverOutput::default()
            },
            None => ObserverOutput::default(),
        }
    }

    fn state(&self) -> Value {
        save_state(&State {
            points: self.points.clone(),
        })
    }

    fn restore(&mut self, state: Value) -> Result<(), String> {
        load_state(state).map(|s: State| self.points = s.points)
    }
}

/// Builds the `early_stopping` observer from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn RunObserver>, ConfigError> {
    let config: EarlyStoppingConfig = args.parse()?;
    let r = config.corrupt_rise;
    if !(r.is_finite() && r > 0.0 && r < 1.0) {
        return Err(args.invalid("corrupt_rise", format!("must be in (0, 1), got {r}")));
    }
    Ok(Box::new(EarlyStopping {
        config,
        points: Vec::new(),
    }))
}

coherent_core::register! {
    ObserverEntry {
        name: "early_stopping",
        description: "The step of peak test accuracy against the step at which the corrupt examples' accuracy starts to rise, with the m-coherence at both.",
        params: EarlyStoppingConfig::params,
        build,
        default_on: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observer(test: &[f64], corrupt: &[f64]) -> EarlyStopping {
        let points = test
            .iter()
            .zip(corrupt)
            .enumerate()
            .map(|(k, (&t, &c))| Point {
                step: k * 10,
                test_acc: Some(t),
                corrupt_acc: Some(c),
                quantity: Some(k as f64),
            })
            .collect();
        EarlyStopping {
            config: EarlyStoppingConfig {
                corrupt_rise: 0.05,
                quantity: coherence(),
            },
            points,
        }
    }

    #[test]
    fn rise_is_measured_from_the_running_minimum() {
        // corrupt accuracy falls to 0.08, then climbs: the rise is where it passes 0.08 + 0.05
        let o = observer(
            &[0.1, 0.5, 0.8, 0.85, 0.84, 0.8],
            &[0.12, 0.09, 0.08, 0.1, 0.14, 0.4],
        );
        assert_eq!(corrupt_rise_step(&o.points, 0.05), Some(40));
        let (v, cells) = o.analyse().unwrap();
        assert_eq!(v["peak_test_step"], 30);
        assert_eq!(v["corrupt_acc_at_peak_test"], 0.1);
        assert_eq!(v["corrupt_rise_step"], 40);
        assert_eq!(v["coherence_at_peak_test"], 3.0);
        assert_eq!(v["coherence_at_corrupt_rise"], 4.0);
        assert_eq!(v["peak_before_rise"], true);
        assert_eq!(v["test_acc_at_corrupt_rise"], 0.84);
        assert_eq!(cells[0].1, "0.850 (30)");
        assert_eq!(cells[1].1, "40");
        let mut back = observer(&[], &[]);
        back.restore(o.state()).unwrap();
        assert_eq!(back.points, o.points);
    }

    #[test]
    fn no_rise_without_memorisation() {
        let o = observer(&[0.1, 0.5, 0.8], &[0.1, 0.1, 0.12]);
        assert_eq!(corrupt_rise_step(&o.points, 0.05), None);
        let (v, cells) = o.analyse().unwrap();
        assert!(v["corrupt_rise_step"].is_null());
        assert_eq!(cells[1].1, "-");
        assert!(observer(&[], &[]).analyse().is_none());
    }

    #[test]
    fn the_threshold_is_checked() {
        let text = "corrupt_rise = 1.5";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        assert_eq!(&text[err.span.unwrap()], "1.5");
    }
}
