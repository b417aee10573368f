//! Final and peak values of every measured quantity of a run.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Tracks the last and the largest value of each quantity, with the step of the largest.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    last: BTreeMap<String, f64>,
    peak: BTreeMap<String, (f64, usize)>,
}

impl Tracker {
    /// Records the quantities measured at `step`.
    pub fn record(&mut self, step: usize, values: &[(String, f64)]) {
        for (name, v) in values {
            if !v.is_finite() {
                continue;
            }
            self.last.insert(name.clone(), *v);
            let peak = self.peak.entry(name.clone()).or_insert((*v, step));
            if *v > peak.0 {
                *peak = (*v, step);
            }
        }
    }

    /// The last value of `name`.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.last.get(name).copied()
    }

    /// `{"final": {...}, "peak": {name: {"value", "step"}}}`.
    pub fn to_json(&self) -> (Value, Value) {
        let last: Map<String, Value> = self
            .last
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let peak: Map<String, Value> = self
            .peak
            .iter()
            .map(|(k, (v, s))| (k.clone(), json!({"value": v, "step": s})))
            .collect();
        (Value::Object(last), Value::Object(peak))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_last_and_peak_with_its_step() {
        let mut t = Tracker::default();
        t.record(0, &[("c".into(), 1.0)]);
        t.record(10, &[("c".into(), 5.0)]);
        t.record(20, &[("c".into(), 2.0), ("x".into(), f64::NAN)]);
        let (last, peak) = t.to_json();
        assert_eq!(last["c"], 2.0);
        assert_eq!(peak["c"]["value"], 5.0);
        assert_eq!(peak["c"]["step"], 10);
        assert!(last.get("x").is_none());
    }
}
