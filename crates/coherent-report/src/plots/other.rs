//! Every other scalar a run recorded (`gradient_diversity`, `stiffness_cos`, ...): one small
//! panel per quantity, one line per run.

use super::Context;
use crate::chart::{Figure, Panel};

/// Quantities shown elsewhere in the report, or not worth a plot.
const KNOWN: &[&str] = &[
    "step",
    "epoch",
    "elapsed_s",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "pristine_loss",
    "pristine_acc",
    "corrupt_loss",
    "corrupt_acc",
    "coherence",
    "alpha_m",
    "sample_loss",
    "sample_acc",
];

/// The remaining quantities, in the order they first appear.
pub fn others(cx: &Context) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in cx.runs {
        for name in run.metrics.names() {
            let fraction = super::fractions::PANELS
                .iter()
                .any(|(_, key, null)| key == name || *null == Some(name.as_str()));
            let known =
                KNOWN.contains(&name.as_str()) || name.starts_with("coherence/") || fraction;
            if !known && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// The other-metrics figure and its caption.
pub fn figure(cx: &Context) -> Option<(String, Figure)> {
    let names = others(cx);
    if names.is_empty() {
        return None;
    }
    let panels = names
        .iter()
        .map(|name| Panel {
            title: name.clone(),
            x_label: "step".into(),
            y_label: name.clone(),
            lines: cx.run_lines(name, false),
            log_y: cx.options.log_scale,
            ..Panel::default()
        })
        .collect();
    let keys: Vec<&str> = names.iter().map(String::as_str).collect();
    let figure = Figure {
        title: "Other metrics".into(),
        panels,
        legend: cx.run_legend(&keys),
    };
    Some(("Every other quantity the runs recorded.".into(), figure))
}
