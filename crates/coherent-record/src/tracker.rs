//! The last and the largest value of every quantity of a run: the `final` and `peak` of its
//! summary.

use crate::Peak;
use std::collections::BTreeMap;

/// Tracks the last and the largest value of each quantity, with the step of the largest (the
/// first step reaching it). Non-finite values are skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracker {
    last: BTreeMap<String, f64>,
    peak: BTreeMap<String, Peak>,
}

impl Tracker {
    /// Records the quantities measured at `step`.
    pub fn record<'a>(&mut self, step: usize, values: impl IntoIterator<Item = (&'a str, f64)>) {
        for (name, v) in values {
            if !v.is_finite() {
                continue;
            }
            self.last.insert(name.to_string(), v);
            let peak = self
                .peak
                .entry(name.to_string())
                .or_insert(Peak { value: v, step });
            if v > peak.value {
                *peak = Peak { value: v, step };
            }
        }
    }

    /// The last value of `name`.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.last.get(name).copied()
    }

    /// The last value of every quantity.
    pub fn finals(&self) -> &BTreeMap<String, f64> {
        &self.last
    }

    /// The peak of every quantity.
    pub fn peaks(&self) -> &BTreeMap<String, Peak> {
        &self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_last_and_peak_with_its_first_step() {
        let mut t = Tracker::default();
        t.record(0, [("c", 1.0)]);
        t.record(10, [("c", 5.0)]);
        t.record(15, [("c", 5.0)]);
        t.record(20, [("c", 2.0), ("x", f64::NAN)]);
        assert_eq!(t.last("c"), Some(2.0));
        assert_eq!(
            t.peaks()["c"],
            Peak {
                value: 5.0,
                step: 10
            }
        );
        assert!(t.last("x").is_none() && !t.peaks().contains_key("x"));
    }
}
