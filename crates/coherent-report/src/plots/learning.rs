//! Learning-time histograms: when the pristine and the corrupted examples of each run were
//! learned (became and stayed correctly classified), as fractions of each group, with the
//! examples never learned in a separate bar at the right.

use super::Context;
use crate::chart::{color, Bar, Entry, Figure, Panel};
use crate::learning_times::LearningTimes;

/// Bins over the steps.
const BINS: usize = 20;

/// The fraction of `times` in each of `BINS` bins of width `width`, and the fraction never
/// learned.
pub fn histogram(times: &[Option<f64>], width: f64) -> (Vec<f64>, f64) {
    let mut counts = [0.0; BINS];
    let mut never = 0.0;
    for t in times {
        match t {
            Some(t) => counts[((t / width).floor().max(0.0) as usize).min(BINS - 1)] += 1.0,
            None => never += 1.0,
        }
    }
    let n = times.len().max(1) as f64;
    (counts.iter().map(|c| c / n).collect(), never / n)
}

/// The bars of one group, drawn in the left (pristine) or right (corrupt) half of each bin.
fn group_bars(times: &LearningTimes, corrupted: bool, width: f64) -> Vec<Bar> {
    let group: Vec<Option<f64>> = times.of_group(corrupted).collect();
    if group.is_empty() {
        return vec![];
    }
    let (fractions, never) = histogram(&group, width);
    let half = width / 2.0;
    let shift = if corrupted { half } else { 0.0 };
    let c = color(if corrupted { 3 } else { 0 });
    let mut out: Vec<Bar> = fractions
        .iter()
        .enumerate()
        .filter(|(_, f)| **f > 0.0)
        .map(|(k, &f)| Bar {
            x: (k as f64 * width + shift, k as f64 * width + shift + half),
            height: f,
            color: c,
        })
        .collect();
    let x = (BINS as f64 + 0.5) * width + shift;
    out.push(Bar {
        x: (x, x + half),
        height: never,
        color: c,
    });
    out
}

/// The learning-time figure and its caption.
pub fn figure(cx: &Context) -> Option<(String, Figure)> {
    let with: Vec<(usize, &LearningTimes)> = cx
        .runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.learning_times.as_ref()?)))
        .collect();
    if with.is_empty() {
        return None;
    }
    // One step axis for all runs: up to the last step learned or measured.
    let last = with
        .iter()
        .flat_map(|(i, t)| {
            let measured = cx.runs[*i].metrics.last_step();
            t.learned.iter().copied().flatten().chain(measured)
        })
        .fold(0.0, f64::max);
    let width = (last / BINS as f64).max(1e-9);
    let panels = with
        .iter()
        .map(|&(i, t)| {
            let mut bars = group_bars(t, false, width);
            bars.extend(group_bars(t, true, width));
            let top = bars
                .iter()
                .filter(|b| b.x.0 > BINS as f64 * width)
                .map(|b| b.height)
                .fold(0.0, f64::max);
            let (p, c) = (t.of_group(false).count(), t.of_group(true).count());
            Panel {
                title: format!("{} ({p} pristine, {c} corrupt)", cx.labels[i]),
                x_label: "step learned".into(),
                y_label: "fraction of the group".into(),
                bars,
                notes: vec![((BINS as f64 + 1.0) * width, top, "never".into())],
                ..Panel::default()
            }
        })
        .collect();
    let legend = vec![
        Entry {
            label: "pristine examples".into(),
            color: color(0),
            dashed: false,
            boxed: true,
        },
        Entry {
            label: "corrupted examples".into(),
            color: color(3),
            dashed: false,
            boxed: true,
        },
    ];
    let caption = "When each training example became, and stayed, correctly classified, as a \
                   fraction of its group (pristine or corrupted), one panel per run; the bar \
                   marked \"never\" counts the examples not learned by the end.";
    let figure = Figure {
        title: "Learning times".into(),
        panels,
        legend,
    };
    Some((caption.into(), figure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_per_bin_and_never() {
        let times = [Some(0.0), Some(9.9), Some(10.0), Some(500.0), None];
        let (f, never) = histogram(&times, 10.0);
        assert_eq!((f[0], f[1], f[BINS - 1], never), (0.4, 0.2, 0.2, 0.2));
        assert!((f.iter().sum::<f64>() + never - 1.0).abs() < 1e-12);
    }
}
