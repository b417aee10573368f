//! `summary.json`: how a run ended and what it reached.

use crate::ordered;
use crate::RunId;
use crate::SCHEMA;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step ran.
    Completed,
    /// A loss or an update became NaN or infinite; training stopped there.
    Diverged,
    /// Stopped by a signal after saving a checkpoint (in `run.json` only: an interrupted run
    /// has no summary).
    Interrupted,
}

impl RunStatus {
    /// The status as written in the record.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Diverged => "diverged",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// The largest value of a quantity and the step where it was reached (the first, on ties).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// The value.
    pub value: f64,
    /// Its step.
    pub step: usize,
}

/// The contents of `summary.json`, written when a run ends (before `DONE`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Record schema ([`SCHEMA`]; 1 when absent).
    #[serde(default = "schema_one")]
    pub schema: u32,
    /// Which run.
    #[serde(flatten)]
    pub id: RunId,
    /// How the run ended.
    pub status: RunStatus,
    /// The step at which a diverged run stopped.
    #[serde(default)]
    pub diverged_at_step: Option<usize>,
    /// Optimisation steps made.
    #[serde(default)]
    pub steps: usize,
    /// Epochs made (steps / steps per epoch).
    #[serde(default)]
    pub epochs: f64,
    /// Seconds of training, over all attempts.
    #[serde(default)]
    pub elapsed_s: f64,
    /// Share of training examples whose labels were corrupted.
    #[serde(default)]
    pub corrupted_fraction: f64,
    /// The quantities the comparison table shows the peak and final value of (the metrics'
    /// headline quantities, e.g. `coherence`).
    #[serde(default)]
    pub headline: Vec<String>,
    /// The last value of every quantity measured.
    #[serde(rename = "final", default)]
    pub last: BTreeMap<String, f64>,
    /// The largest value of every quantity measured, with its step.
    #[serde(default)]
    pub peak: BTreeMap<String, Peak>,
    /// Further cells of the comparison table (heading -> text), from observers and protocols.
    #[serde(default, with = "ordered")]
    pub table: Vec<(String, String)>,
    /// The observers' and protocols' summaries, each under its name (`early_stopping`,
    /// `learning_times`, `easy_hard`, ...).
    #[serde(flatten)]
    pub parts: Map<String, Value>,
}

fn schema_one() -> u32 {
    1
}

impl Summary {
    /// An empty summary of a run that ended with `status`.
    pub fn new(status: RunStatus) -> Summary {
        Summary {
            schema: SCHEMA,
            id: RunId::default(),
            status,
            diverged_at_step: None,
            steps: 0,
            epochs: 0.0,
            elapsed_s: 0.0,
            corrupted_fraction: 0.0,
            headline: Vec::new(),
            last: BTreeMap::new(),
            peak: BTreeMap::new(),
            table: Vec::new(),
            parts: Map::new(),
        }
    }

    /// Brings a record of an earlier schema to this one: version 1 had no `headline` (its
    /// table showed `coherence` when measured) and kept the early-stopping and easy-vs-hard
    /// cells of the comparison table only in their parts.
    pub fn upgrade(mut self) -> Summary {
        if self.schema < 2 {
            if self.peak.contains_key("coherence") {
                self.headline = vec!["coherence".into()];
            }
            if self.table.is_empty() {
                self.table = version_one_cells(&self.parts);
            }
            self.schema = SCHEMA;
        }
        self
    }

    /// The part of `name` (an observer's or a protocol's summary).
    pub fn part(&self, name: &str) -> Option<&Value> {
        self.parts.get(name)
    }
}

/// The comparison-table cells a version-1 summary implies.
fn version_one_cells(parts: &Map<String, Value>) -> Vec<(String, String)> {
    let number = |part: &str, key: &str| parts.get(part)?.get(key)?.as_f64();
    let mut cells = Vec::new();
    if parts.contains_key("early_stopping") {
        let peak = match (
            number("early_stopping", "peak_test_acc"),
            number("early_stopping", "peak_test_step"),
        ) {
            (Some(v), Some(s)) => format!("{v:.3} ({s})"),
            (None, Some(s)) => format!("- ({s})"),
            _ => "-".into(),
        };
        let rise =
            number("early_stopping", "corrupt_rise_step").map_or("-".into(), |s| s.to_string());
        cells.push(("peak test (step)".into(), peak));
        cells.push(("corrupt rise".into(), rise));
    }
    if let Some(eh) = parts.get("easy_hard") {
        for part in ["easy", "hard"] {
            let acc = eh.get(part).and_then(|p| p.get("held_out_acc")?.as_f64());
            cells.push((
                format!("{part} held-out acc"),
                acc.map_or("-".into(), |v| format!("{v:.3}")),
            ));
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_its_parts_and_table() {
        let mut s = Summary::new(RunStatus::Completed);
        s.id.run = "000".into();
        s.last.insert("test_acc".into(), 0.5);
        s.peak.insert(
            "coherence".into(),
            Peak {
                value: 3.0,
                step: 20,
            },
        );
        s.table.push(("corrupt rise".into(), "40".into()));
        s.parts
            .insert("learning_times".into(), serde_json::json!({"examples": 3}));
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"final\":{\"test_acc\":0.5}"), "{text}");
        assert!(
            text.contains("\"learning_times\":{\"examples\":3}"),
            "{text}"
        );
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_version_one_summary_gains_its_headline_and_table_cells() {
        let text = r#"{"experiment": "q", "run": "001", "index": 1, "params": {},
            "status": "completed", "diverged_at_step": null, "steps": 800,
            "final": {"coherence": 1.08}, "peak": {"coherence": {"value": 1.6, "step": 620}},
            "early_stopping": {"peak_test_acc": 0.129, "peak_test_step": 360, "corrupt_rise_step": 280}}"#;
        let s: Summary = serde_json::from_str(text).unwrap();
        assert_eq!(s.schema, 1);
        let s = s.upgrade();
        assert_eq!(s.headline, ["coherence"]);
        assert_eq!(
            s.table,
            [
                ("peak test (step)".to_string(), "0.129 (360)".to_string()),
                ("corrupt rise".to_string(), "280".to_string())
            ]
        );
        assert!(s.part("early_stopping").is_some());
    }
}
