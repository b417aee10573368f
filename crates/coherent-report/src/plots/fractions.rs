//! `f_pristine` and `f_corrupt` against training steps (solid), with their values in the null
//! world (dashed) and, when recorded, their cumulative versions; one line colour per run.

use super::Context;
use crate::chart::{Entry, Figure, Panel};
use plotters::style::RGBColor;

/// Panels: title, measured key, null-world key.
const PANELS: [(&str, &str, Option<&str>); 4] = [
    ("f_pristine", "f_pristine", Some("f_pristine_null")),
    ("f_corrupt", "f_corrupt", Some("f_corrupt_null")),
    ("f_pristine, cumulative", "f_pristine_cum", None),
    ("f_corrupt, cumulative", "f_corrupt_cum", None),
];

/// The fractions figure and its caption.
pub fn figure(cx: &Context) -> Option<(String, Figure)> {
    let mut keys = Vec::new();
    let mut any_null = false;
    let panels: Vec<Panel> = PANELS
        .iter()
        .filter_map(|&(title, key, null)| {
            let mut lines = cx.run_lines(key, false);
            if let Some(null) = null {
                let nulls = cx.run_lines(null, true);
                any_null |= !nulls.is_empty();
                lines.extend(nulls);
                keys.push(null);
            }
            keys.push(key);
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
    let mut legend = cx.run_legend(&keys);
    if any_null {
        legend.push(Entry {
            label: "dashed: null world".into(),
            color: RGBColor(90, 90, 90),
            dashed: true,
            boxed: false,
        });
    }
    let caption = "f_pristine and f_corrupt (solid) against their values in the null world \
                   (dashed), one colour per run.";
    let figure = Figure {
        title: "Pristine and corrupt fractions".into(),
        panels,
        legend,
    };
    Some((caption.into(), figure))
}
