//! The summary table: one row per run, from `summary.json` where the run wrote it and from the
//! last measurements otherwise. Columns that no run has (pristine / corrupt accuracy,
//! adjusted overfit, early stopping) are left out.

use crate::run::Run;

/// A table of text cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

/// The final value of `key`: `summary.json` `final`, else the last measurement.
fn last(run: &Run, key: &str) -> Option<f64> {
    run.summary_number(&["final", key])
        .or_else(|| run.metrics.last(key))
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn step(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v}"))
}

type Cell = Box<dyn Fn(&Run) -> Option<String>>;

/// The columns: heading and cell (`None` when the run lacks it; a column that no run has is
/// dropped).
fn columns(experiments: bool) -> Vec<(&'static str, Cell)> {
    let number = |key: &'static str, digits: usize| -> Cell {
        Box::new(move |r: &Run| last(r, key).map(|v| fixed(Some(v), digits)))
    };
    let early = |key: &'static str| -> Cell {
        Box::new(move |r: &Run| {
            let es = r.summary.as_ref()?.get("early_stopping")?;
            Some(step(es.get(key).and_then(|v| v.as_f64())))
        })
    };
    vec![
        (
            "run",
            Box::new(move |r: &Run| {
                Some(match experiments {
                    true => format!("{}/{}", r.experiment, r.name),
                    false => r.name.clone(),
                })
            }),
        ),
        (
            "status",
            Box::new(|r: &Run| {
                let s = r.summary.as_ref().and_then(|s| s.get("status")?.as_str());
                Some(s.unwrap_or("incomplete").to_string())
            }),
        ),
        (
            "steps",
            Box::new(|r: &Run| {
                Some(step(
                    r.summary_number(&["steps"])
                        .or_else(|| r.metrics.last_step()),
                ))
            }),
        ),
        ("train acc", number("train_acc", 3)),
        ("test acc", number("test_acc", 3)),
        ("pristine acc", number("pristine_acc", 3)),
        ("corrupt acc", number("corrupt_acc", 3)),
        (
            "peak coherence (step)",
            Box::new(|r: &Run| {
                let peak = match (
                    r.summary_number(&["peak", "coherence", "value"]),
                    r.summary_number(&["peak", "coherence", "step"]),
                ) {
                    (Some(v), Some(s)) => Some((v, s)),
                    _ => r.metrics.peak("coherence"),
                };
                peak.map(|(v, s)| format!("{v:.2} ({s})"))
            }),
        ),
        ("final coherence", number("coherence", 2)),
        ("adj. overfit", number("adjusted_overfit", 3)),
        ("peak test step", early("peak_test_step")),
        ("corrupt-rise step", early("corrupt_rise_step")),
    ]
}

/// The summary table of `runs`.
pub fn summary(runs: &[Run]) -> Table {
    let experiments = runs
        .iter()
        .map(|r| r.experiment.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
        > 1;
    let mut header = Vec::new();
    let mut cols: Vec<Vec<String>> = Vec::new();
    for (k, (heading, cell)) in columns(experiments).into_iter().enumerate() {
        let cells: Vec<Option<String>> = runs.iter().map(&cell).collect();
        // The run, status and steps columns always stay.
        if k < 3 || cells.iter().any(Option::is_some) {
            header.push(heading.to_string());
            cols.push(cells.into_iter().map(|c| c.unwrap_or("-".into())).collect());
        }
    }
    let rows = (0..runs.len())
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect();
    Table { header, rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Metrics;
    use std::path::{Path, PathBuf};

    fn run(name: &str, metrics: &str, summary: Option<serde_json::Value>) -> Run {
        Run {
            dir: PathBuf::from(name),
            name: name.into(),
            experiment: "e".into(),
            params: vec![],
            layers: vec![],
            metric_samples: Default::default(),
            metrics: Metrics::parse(metrics, Path::new("m")).unwrap(),
            summary,
            learning_times: None,
        }
    }

    #[test]
    fn rows_come_from_the_summary_and_absent_columns_are_dropped() {
        let s = serde_json::json!({"status": "completed", "steps": 800,
            "final": {"train_acc": 0.94, "test_acc": 0.9216, "coherence": 1.5432},
            "peak": {"coherence": {"value": 12.823, "step": 20}}});
        let t = summary(&[run("000", "{\"step\":0}", Some(s))]);
        assert_eq!(
            t.header,
            [
                "run",
                "status",
                "steps",
                "train acc",
                "test acc",
                "peak coherence (step)",
                "final coherence"
            ]
        );
        assert_eq!(
            t.rows[0],
            [
                "000",
                "completed",
                "800",
                "0.940",
                "0.922",
                "12.82 (20)",
                "1.54"
            ]
        );
    }

    #[test]
    fn without_a_summary_the_last_measurements_are_used() {
        let m = "{\"step\":0,\"coherence\":5,\"corrupt_acc\":0.1}\n{\"step\":10,\"coherence\":3,\"corrupt_acc\":0.2}\n";
        let with_es = serde_json::json!({"status": "completed",
            "early_stopping": {"peak_test_step": 40, "corrupt_rise_step": null}});
        let t = summary(&[run("a", m, None), run("b", "{\"step\":0}", Some(with_es))]);
        assert_eq!(
            t.header,
            [
                "run",
                "status",
                "steps",
                "corrupt acc",
                "peak coherence (step)",
                "final coherence",
                "peak test step",
                "corrupt-rise step"
            ]
        );
        assert_eq!(
            t.rows[0],
            [
                "a",
                "incomplete",
                "10",
                "0.200",
                "5.00 (0)",
                "3.00",
                "-",
                "-"
            ]
        );
        assert_eq!(t.rows[1], ["b", "completed", "0", "-", "-", "-", "40", "-"]);
    }
}
