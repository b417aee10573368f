//! `f_pristine` and `f_corrupt` against training steps (solid), with their values in the null
//! world (dashed) and, when recorded, their cumulative versions and their ratio to each group's
//! share of the batch; one line colour per run.
//! Only runs with both pristine and corrupt examples are drawn: with every label corrupted
//! (or none) the fractions are 0 and 1 by definition and say nothing.

use super::Context;
use crate::chart::{Entry, Figure, Panel};
use crate::run::Run;
use plotters::style::RGBColor;

/// Panels: title, measured key, null-world key.
pub const PANELS: [(&str, &str, Option<&str>); 6] = [
    ("f_pristine", "f_pristine", Some("f_pristine_null")),
    ("f_corrupt", "f_corrupt", Some("f_corrupt_null")),
    (
        "f_pristine, cumulative",
        "f_pristine_cum",
        Some("f_pristine_null_cum"),
    ),
    (
        "f_corrupt, cumulative",
        "f_corrupt_cum",
        Some("f_corrupt_null_cum"),
    ),
    (
        "f_pristine, cumulative, per pristine share",
        "f_pristine_per_example",
        None,
    ),
    (
        "f_corrupt, cumulative, per corrupt share",
        "f_corrupt_per_example",
        None,
    ),
];

/// Whether the run trained on pristine and on corrupt examples (from its summary, or while it
/// runs from its evaluations of both groups).
fn has_both_groups(run: &Run) -> bool {
    match &run.summary {
        Some(s) => s.corrupted_fraction > 0.0 && s.corrupted_fraction < 1.0,
        None => ["pristine_acc", "corrupt_acc"]
            .iter()
            .all(|k| run.metrics.series(k).is_some()),
    }
}

/// The fractions figure and its caption.
pub fn figure(cx: &Context) -> Option<(String, Figure)> {
    let shown: Vec<usize> = (0..cx.runs.len())
        .filter(|&i| has_both_groups(&cx.runs[i]))
        .collect();
    let mut any_null = false;
    let panels: Vec<Panel> = PANELS
        .iter()
        .filter_map(|&(title, key, null)| {
            let mut lines = cx.lines_of(shown.iter().copied(), key, Some(false));
            if let Some(null) = null {
                let nulls = cx.lines_of(shown.iter().copied(), null, Some(true));
                any_null |= !nulls.is_empty();
                lines.extend(nulls);
            }
            (!lines.is_empty()).then(|| Panel {
                title: title.into(),
                x_label: "step".into(),
                y_label: "fraction".into(),
                lines,
                ..Panel::default()
            })
        })
        .collect();
    if panels.is_empty() {
        return None;
    }
    let drawn = shown.iter().copied().filter(|&i| {
        let measured = |key: &str| cx.runs[i].metrics.series(key).is_some();
        PANELS.iter().any(|(_, key, _)| measured(key))
    });
    let mut legend = cx.legend_of(drawn, false);
    if any_null {
        legend.push(Entry {
            label: "dashed: null world".into(),
            color: RGBColor(90, 90, 90),
            dashed: true,
            boxed: false,
        });
    }
    let caption = "The share of each step's loss reduction the pristine and the corrupt \
                   examples supply, f_pristine and f_corrupt (solid; means over the steps \
                   between evaluations, then cumulative from step 0, then cumulative divided \
                   by the group's share of the examples: above 1, each of its examples \
                   supplied more than its share), against their values in the null world \
                   (dashed), one colour per run. Runs with every label corrupted, or none, \
                   are left out.";
    let figure = Figure {
        title: "Pristine and corrupt fractions".into(),
        panels,
        legend,
    };
    Some((caption.into(), figure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Metrics;
    use crate::ReportOptions;
    use std::path::Path;

    fn run(name: &str, noise: &str, lines: &str) -> Run {
        let mut run = Run::named("e", name).with_params(&[("dataset.label_noise", noise)]);
        run.metrics = Metrics::parse(lines, Path::new("metrics.jsonl")).unwrap();
        run
    }

    #[test]
    fn runs_with_only_corrupt_or_only_pristine_examples_are_left_out() {
        let mixed = r#"{"step": 10, "pristine_acc": 0.5, "corrupt_acc": 0.1, "f_pristine": 0.6, "f_pristine_null": 0.5}"#;
        let all_corrupt =
            r#"{"step": 10, "corrupt_acc": 0.1, "f_pristine": 0.0, "f_pristine_null": 0.0}"#;
        let runs = [run("a", "0.5", mixed), run("b", "1.0", all_corrupt)];
        let labels = crate::legend::labels(&runs);
        let options = ReportOptions::default();
        let cx = Context::new(&runs, &labels, &options);
        let (_, figure) = figure(&cx).unwrap();
        assert_eq!(figure.panels.len(), 1);
        assert_eq!(
            figure.panels[0].lines.len(),
            2,
            "the run and its null world"
        );
        let legend: Vec<&str> = figure.legend.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(legend, ["label_noise=0.5", "dashed: null world"]);
        let none = [run("b", "1.0", all_corrupt)];
        let labels = crate::legend::labels(&none);
        assert!(super::figure(&Context::new(&none, &labels, &options)).is_none());
    }
}
