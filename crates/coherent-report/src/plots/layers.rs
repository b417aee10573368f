//! m-coherence of each layer's parameters (`coherence/<layer>`): one panel per run, one line
//! per layer.

use super::Context;
use crate::chart::{color, Entry, Figure, Line, Panel};

const PREFIX: &str = "coherence/";

/// The per-layer figure and its caption.
pub fn figure(cx: &Context) -> Option<(String, Figure)> {
    // Layers in network order (run.json), then any other measured in file order.
    let mut layers: Vec<String> = Vec::new();
    for run in cx.runs {
        let measured = run
            .metrics
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix(PREFIX));
        let ordered = run
            .layers
            .iter()
            .map(String::as_str)
            .filter(|l| run.metrics.series(&format!("{PREFIX}{l}")).is_some());
        for layer in ordered.chain(measured) {
            if !layers.iter().any(|l| l == layer) {
                layers.push(layer.to_string());
            }
        }
    }
    if layers.is_empty() {
        return None;
    }
    let panels: Vec<Panel> = cx
        .runs
        .iter()
        .enumerate()
        .filter_map(|(i, run)| {
            let lines: Vec<Line> = layers
                .iter()
                .enumerate()
                .filter_map(|(k, layer)| {
                    Some(Line {
                        points: run.metrics.series(&format!("{PREFIX}{layer}"))?.to_vec(),
                        color: color(k),
                        dashed: false,
                    })
                })
                .collect();
            (!lines.is_empty()).then(|| Panel {
                title: cx.labels[i].clone(),
                x_label: "step".into(),
                y_label: "m-coherence".into(),
                lines,
                refs: vec![(1.0, "1".into())],
                log_y: cx.options.log_scale,
                ..Panel::default()
            })
        })
        .collect();
    let legend = layers
        .iter()
        .enumerate()
        .map(|(k, l)| Entry::line(l.clone(), color(k)))
        .collect();
    let caption = "m-coherence of each layer's parameters alone, one panel per run.";
    let figure = Figure {
        title: "m-coherence per layer".into(),
        panels,
        legend,
    };
    Some((caption.into(), figure))
}
