//! m-coherence against training steps, one line per run, with reference lines at 1 (no
//! alignment: each example helps only itself) and at m (perfect alignment).

use super::Context;
use crate::chart::{tick, Figure, Panel};
use std::collections::BTreeSet;

/// The coherence figure and its caption.
pub fn figure(cx: &Context) -> Option<(String, Figure)> {
    let lines = cx.run_lines("coherence", false);
    if lines.is_empty() {
        return None;
    }
    let log = cx.options.log_scale;
    let highest = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let ms: BTreeSet<u64> = cx
        .with("coherence")
        .filter_map(|(_, r)| r.coherence_m())
        .map(|m| m as u64)
        .collect();
    let mut refs = vec![(1.0, "1".to_string())];
    let mut off_scale = Vec::new();
    for &m in &ms {
        // On a linear axis a line at m = 1000 would flatten curves that peak near 10.
        if log || m as f64 <= 2.0 * highest {
            refs.push((m as f64, format!("m = {m}")));
        } else {
            off_scale.push(m);
        }
    }
    let m_text = match ms.len() {
        0 => String::new(),
        1 => format!(" (m = {})", ms.iter().next().unwrap_or(&0)),
        _ => " (m per run)".into(),
    };
    let panel = Panel {
        title: format!("m-coherence of the metric's sample{m_text}"),
        x_label: "step".into(),
        y_label: if log {
            "m-coherence (log scale)"
        } else {
            "m-coherence"
        }
        .into(),
        lines,
        refs,
        log_y: log,
        ..Panel::default()
    };
    let mut caption = "m-coherence |sum g_i|^2 / sum |g_i|^2 of the per-example gradients of a \
                       fixed sample of m training examples: 1 when they are orthogonal (each \
                       example helps only itself), m when they all agree. Dashed grey lines: \
                       1 and m."
        .to_string();
    if !off_scale.is_empty() {
        let ms: Vec<String> = off_scale.iter().map(|m| tick(*m as f64)).collect();
        caption.push_str(&format!(
            " The line at m = {} is above the plot (--log-scale shows it).",
            ms.join(", ")
        ));
    }
    let figure = Figure {
        title: "m-coherence".into(),
        panels: vec![panel],
        legend: cx.run_legend(&["coherence"]),
    };
    Some((caption, figure))
}
