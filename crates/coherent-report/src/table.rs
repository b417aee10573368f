//! The summary table of a report: the comparison table of runs (`coherent_record::comparison`),
//! from each run's `summary.json`, or from its last measurements for a run that did not
//! finish.

use crate::run::Run;
use coherent_record::comparison::{comparison, Row};
pub use coherent_record::Table;
use coherent_record::{Peak, RunStatus, Summary};

/// The summary of a run that did not write one: its last and peak measurements.
fn from_metrics(run: &Run) -> Summary {
    let mut s = Summary::new(RunStatus::Completed);
    for name in run.metrics.names() {
        if let Some(v) = run.metrics.last(name) {
            s.last.insert(name.clone(), v);
        }
        if let Some((value, step)) = run.metrics.peak(name) {
            s.peak.insert(
                name.clone(),
                Peak {
                    value,
                    step: step as usize,
                },
            );
        }
    }
    if run.metrics.series("coherence").is_some() {
        s.headline = vec!["coherence".into()];
    }
    s
}

/// The summary table of `runs` (labelled `experiment/run` when they come from several
/// experiments).
pub fn summary(runs: &[Run]) -> Table {
    let several = runs
        .iter()
        .map(|r| r.experiment.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
        > 1;
    let partial: Vec<Option<Summary>> = runs
        .iter()
        .map(|r| r.summary.is_none().then(|| from_metrics(r)))
        .collect();
    let rows: Vec<Row<'_>> = runs
        .iter()
        .zip(&partial)
        .map(|(r, p)| {
            let (summary, status) = match (&r.summary, p) {
                (Some(s), _) => (s, s.status.label().to_string()),
                (None, Some(p)) => (p, "incomplete".to_string()),
                (None, None) => unreachable!("a summary or a partial one"),
            };
            Row {
                run: match several {
                    true => format!("{}/{}", r.experiment, r.name),
                    false => r.name.clone(),
                },
                status,
                summary: Some(summary),
            }
        })
        .collect();
    comparison(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Metrics;
    use std::path::Path;

    fn run(name: &str, metrics: &str, summary: Option<Summary>) -> Run {
        Run {
            metrics: Metrics::parse(metrics, Path::new("m")).unwrap(),
            summary,
            ..Run::named("e", name)
        }
    }

    #[test]
    fn rows_come_from_the_summary_or_the_last_measurements() {
        let mut s = Summary::new(RunStatus::Completed);
        s.headline = vec!["coherence".into()];
        s.last = [
            ("train_acc", 0.94),
            ("test_acc", 0.9216),
            ("coherence", 1.5432),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        s.peak.insert(
            "coherence".into(),
            Peak {
                value: 12.823,
                step: 20,
            },
        );
        let m = "{\"step\":0,\"coherence\":5}\n{\"step\":10,\"coherence\":3}\n";
        let t = summary(&[run("000", "{\"step\":0}", Some(s)), run("a", m, None)]);
        assert_eq!(
            t.header[..4],
            ["run", "status", "peak coherence (step)", "final coherence"]
        );
        assert_eq!(
            t.rows[0][..6],
            ["000", "completed", "12.82 (20)", "1.54", "0.940", "0.922"]
        );
        assert_eq!(t.rows[1][..4], ["a", "incomplete", "5.00 (0)", "3.00"]);
    }
}
