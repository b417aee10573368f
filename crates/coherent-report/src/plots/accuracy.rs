//! Accuracy and loss against training steps: one panel per quantity (train, test, and under
//! label noise the pristine and the corrupted training examples), one line per run.

use super::Context;
use crate::chart::{Figure, Panel};

/// The quantities of a figure: key suffix and panel title.
const PARTS: [(&str, &str); 4] = [
    ("train", "training set (labels trained on)"),
    ("test", "test set"),
    ("pristine", "pristine training examples"),
    ("corrupt", "corrupted examples (their corrupted labels)"),
];

fn panels(cx: &Context, what: &str, range: Option<(f64, f64)>) -> (Vec<Panel>, Vec<String>) {
    let mut keys = Vec::new();
    let panels = PARTS
        .iter()
        .filter_map(|(part, title)| {
            let key = format!("{part}_{what}");
            let lines = cx.run_lines(&key, false);
            keys.push(key);
            (!lines.is_empty()).then(|| Panel {
                title: title.to_string(),
                x_label: "step".into(),
                y_label: if what == "acc" { "accuracy" } else { "loss" }.into(),
                lines,
                y_range: range,
                log_y: range.is_none() && cx.options.log_scale,
                ..Panel::default()
            })
        })
        .collect();
    (panels, keys)
}

fn figure(cx: &Context, what: &str, range: Option<(f64, f64)>) -> Option<Figure> {
    let (panels, keys) = panels(cx, what, range);
    if panels.is_empty() {
        return None;
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    Some(Figure {
        title: match what {
            "acc" => "Accuracy".into(),
            _ => "Loss".into(),
        },
        panels,
        legend: cx.run_legend(&keys),
    })
}

/// Accuracy panels.
pub fn accuracy(cx: &Context) -> Option<(String, Figure)> {
    let caption = "Accuracy on the training set (against the labels trained on), the test set, \
                   and under label noise the pristine examples and the corrupted ones (against \
                   their corrupted labels: memorization).";
    Some((caption.into(), figure(cx, "acc", Some((-0.02, 1.02)))?))
}

/// Loss panels (log scale with `--log-scale`).
pub fn loss(cx: &Context) -> Option<(String, Figure)> {
    let caption = "Cross-entropy loss on the same sets.";
    Some((caption.into(), figure(cx, "loss", None)?))
}
