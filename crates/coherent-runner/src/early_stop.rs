//! Early stopping under label noise: does test accuracy peak before the corrupt examples are
//! memorised?
//!
//! From the evaluations of a run: the step of peak test accuracy, and the step at which the
//! accuracy on the corrupt training examples (against their corrupted labels) starts to rise,
//! defined as the first evaluation at which it exceeds its running minimum by more than
//! `threshold` (absolute accuracy). The m-coherence at the evaluation nearest to each step
//! shows what the gradients looked like there.

use serde_json::{json, Value};

/// One evaluation point: the quantities early stopping looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    /// The step.
    pub step: usize,
    /// Test accuracy.
    pub test_acc: Option<f64>,
    /// Accuracy on the corrupt training examples.
    pub corrupt_acc: Option<f64>,
    /// m-coherence of the metric sample.
    pub coherence: Option<f64>,
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

/// The `early_stopping` object of `summary.json`, or `None` without test accuracies.
pub fn analyse(points: &[Point], threshold: f64) -> Option<Value> {
    let (peak_step, peak) = points
        .iter()
        .filter_map(|p| p.test_acc.map(|v| (p.step, v)))
        .fold(None, |best: Option<(usize, f64)>, (s, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((s, v)),
        })?;
    let rise = corrupt_rise_step(points, threshold);
    let at = |step: Option<usize>, f: fn(&Point) -> Option<f64>| {
        step.and_then(|s| nearest(points, s, f))
    };
    let final_test = points.iter().rev().find_map(|p| p.test_acc);
    Some(json!({
        "peak_test_step": peak_step,
        "peak_test_acc": peak,
        "final_test_acc": final_test,
        "corrupt_rise_step": rise,
        "corrupt_rise_threshold": threshold,
        "test_acc_at_corrupt_rise": at(rise, |p| p.test_acc),
        "coherence_at_peak_test": at(Some(peak_step), |p| p.coherence),
        "coherence_at_corrupt_rise": at(rise, |p| p.coherence),
        "peak_before_rise": rise.map(|r| peak_step <= r),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(test: &[f64], corrupt: &[f64]) -> Vec<Point> {
        test.iter()
            .zip(corrupt)
            .enumerate()
            .map(|(k, (&t, &c))| Point {
                step: k * 10,
                test_acc: Some(t),
                corrupt_acc: Some(c),
                coherence: Some(k as f64),
            })
            .collect()
    }

    #[test]
    fn rise_is_measured_from_the_running_minimum() {
        // corrupt accuracy falls to 0.08, then climbs: the rise is where it passes 0.08 + 0.05
        let p = points(
            &[0.1, 0.5, 0.8, 0.85, 0.84, 0.8],
            &[0.12, 0.09, 0.08, 0.1, 0.14, 0.4],
        );
        assert_eq!(corrupt_rise_step(&p, 0.05), Some(40));
        let v = analyse(&p, 0.05).unwrap();
        assert_eq!(v["peak_test_step"], 30);
        assert_eq!(v["corrupt_rise_step"], 40);
        assert_eq!(v["coherence_at_peak_test"], 3.0);
        assert_eq!(v["coherence_at_corrupt_rise"], 4.0);
        assert_eq!(v["peak_before_rise"], true);
        assert_eq!(v["test_acc_at_corrupt_rise"], 0.84);
    }

    #[test]
    fn no_rise_without_memorisation() {
        let p = points(&[0.1, 0.5, 0.8], &[0.1, 0.1, 0.12]);
        assert_eq!(corrupt_rise_step(&p, 0.05), None);
        assert!(analyse(&p, 0.05).unwrap()["corrupt_rise_step"].is_null());
        assert!(analyse(&[], 0.05).is_none());
    }
}
