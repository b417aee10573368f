//! The comparison table of runs: one row per run, printed after `coherent run` and `coherent
//! sweep` (and saved as `comparison.txt`) and shown in reports.
//!
//! Columns, left to right: the run and its status; the peak (with its step) and the final
//! value of every headline quantity of the runs' metrics (`coherence`); train and test
//! accuracy; under label noise the pristine and corrupt accuracy and the adjusted overfit;
//! then the cells that observers and protocols put in their summaries' `table` (early
//! stopping, easy vs hard, ...), in the order they first appear. A run without a value shows
//! `-`.

use crate::Summary;

/// One run of the table: its label, its state, and its summary if it has one.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    /// The run's label (its directory name, or `experiment/run`).
    pub run: String,
    /// Its status (`completed`, `diverged`, or a sweep state such as `failed`).
    pub status: String,
    /// Its summary, if it has one.
    pub summary: Option<&'a Summary>,
}

impl<'a> Row<'a> {
    /// The row of a run that wrote `summary`.
    pub fn of(summary: &'a Summary) -> Row<'a> {
        Row {
            run: summary.id.run.clone(),
            status: summary.status.label().into(),
            summary: Some(summary),
        }
    }
}

/// A table of text cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn union<'a>(lists: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in lists {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// The comparison table of `rows`.
pub fn comparison(rows: &[Row<'_>]) -> Table {
    let summaries = || rows.iter().filter_map(|r| r.summary);
    let headline = union(summaries().flat_map(|s| s.headline.iter().map(String::as_str)));
    let noisy = summaries().any(|s| s.last.contains_key("corrupt_acc"));
    let cells = union(summaries().flat_map(|s| s.table.iter().map(|(h, _)| h.as_str())));
    let mut header = vec!["run".to_string(), "status".to_string()];
    for q in &headline {
        header.push(format!("peak {q} (step)"));
        header.push(format!("final {q}"));
    }
    header.extend(["train acc".to_string(), "test acc".to_string()]);
    let accuracies: &[(&str, &str)] = if noisy {
        &[
            ("pristine acc", "pristine_acc"),
            ("corrupt acc", "corrupt_acc"),
            ("adj. overfit", "adjusted_overfit"),
        ]
    } else {
        &[]
    };
    header.extend(accuracies.iter().map(|(h, _)| h.to_string()));
    header.extend(cells.iter().cloned());
    let body = rows
        .iter()
        .map(|r| {
            let last = |k: &str| r.summary.and_then(|s| s.last.get(k).copied());
            let mut row = vec![r.run.clone(), r.status.clone()];
            for q in &headline {
                let peak = r.summary.and_then(|s| s.peak.get(q));
                row.push(peak.map_or("-".into(), |p| format!("{:.2} ({})", p.value, p.step)));
                row.push(fixed(last(q), 2));
            }
            row.push(fixed(last("train_acc"), 3));
            row.push(fixed(last("test_acc"), 3));
            row.extend(accuracies.iter().map(|(_, k)| fixed(last(k), 3)));
            for heading in &cells {
                let cell = r
                    .summary
                    .and_then(|s| s.table.iter().find(|(h, _)| h == heading))
                    .map(|(_, c)| c.clone());
                row.push(cell.unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    Table { header, rows: body }
}

impl Table {
    /// The table as aligned text: the header, a rule of dashes, one line per row.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].len())
                    .chain([self.header[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            parts.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        out.push_str(&line(
            &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Peak, RunStatus};

    fn summary(run: &str, last: &[(&str, f64)]) -> Summary {
        let mut s = Summary::new(RunStatus::Completed);
        s.id.run = run.into();
        s.last = last.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        s
    }

    #[test]
    fn headline_quantities_accuracies_and_cells() {
        let mut a = summary(
            "000",
            &[("coherence", 3.0), ("train_acc", 0.9), ("test_acc", 0.85)],
        );
        a.headline = vec!["coherence".into()];
        a.peak.insert(
            "coherence".into(),
            Peak {
                value: 12.345,
                step: 40,
            },
        );
        let t = comparison(&[Row::of(&a)]).to_text();
        assert!(
            t.starts_with(
                "run  status     peak coherence (step)  final coherence  train acc  test acc\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("000  completed  12.35 (40)             3.00             0.900      0.850"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 3);
    }

    #[test]
    fn noisy_runs_add_pristine_corrupt_adjusted_overfit_and_the_cells_in_order() {
        let mut a = summary("000", &[("corrupt_acc", 0.4), ("adjusted_overfit", 0.05)]);
        a.table = vec![
            ("peak test (step)".into(), "0.910 (400)".into()),
            ("corrupt rise".into(), "640".into()),
        ];
        let mut b = summary("001", &[]);
        b.table = vec![("easy held-out acc".into(), "0.980".into())];
        let missing = Row {
            run: "002".into(),
            status: "missing".into(),
            summary: None,
        };
        let t = comparison(&[Row::of(&a), Row::of(&b), missing]);
        assert_eq!(
            t.header,
            [
                "run",
                "status",
                "train acc",
                "test acc",
                "pristine acc",
                "corrupt acc",
                "adj. overfit",
                "peak test (step)",
                "corrupt rise",
                "easy held-out acc"
            ]
        );
        assert_eq!(
            t.rows[0][5..],
            ["0.400", "0.050", "0.910 (400)", "640", "-"]
        );
        assert_eq!(t.rows[1][7..], ["-", "-", "0.980"]);
        assert_eq!(t.rows[2][..3], ["002", "missing", "-"]);
    }
}
