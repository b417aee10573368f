//! How runs are drawn: one colour per value of a sweep axis, so that a report over many runs
//! stays readable.
//!
//! The sweep axes that vary between the runs (seeds aside) decide. With none, every run has a
//! colour of its own. Otherwise the axis with the most values (the last one on a tie: it varies
//! fastest) gives the colour, and the other axes, when their values take two combinations,
//! give solid or dashed lines; runs that differ only by their seed are drawn alike. When the
//! other axes take more than two combinations, every combination has a colour of its own.
//! The legend lists each colour and each line style once.

use crate::chart::{color, Entry};
use crate::legend::short_key;
use crate::run::Run;
use plotters::style::RGBColor;

/// The grey of legend entries that stand for a line style rather than a colour.
const STYLE_GREY: RGBColor = RGBColor(90, 90, 90);

/// How one run is drawn, and the legend entries it stands under.
#[derive(Clone, Debug)]
pub struct Style {
    /// Its colour.
    pub color: RGBColor,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// The legend text of its colour.
    pub color_label: String,
    /// The legend text of its line style, when line styles tell runs apart.
    pub dash_label: Option<String>,
}

/// The sweep axes whose values differ between the runs, seeds aside, in order of appearance.
fn varying_axes(runs: &[Run]) -> Vec<(String, Vec<String>)> {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    for run in runs {
        for (key, _) in &run.params {
            if key != "seed" && !axes.iter().any(|(k, _)| k == key) {
                axes.push((key.clone(), Vec::new()));
            }
        }
    }
    for (key, values) in &mut axes {
        for run in runs {
            let value = run.param(key).unwrap_or("-").to_string();
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    axes.retain(|(_, values)| values.len() > 1);
    axes
}

/// `key=value` pairs of the run on `axes`, with short keys.
fn describe(run: &Run, axes: &[&(String, Vec<String>)]) -> String {
    let parts: Vec<String> = axes
        .iter()
        .map(|(key, _)| format!("{}={}", short_key(key), run.param(key).unwrap_or("-")))
        .collect();
    parts.join(" ")
}

/// The style of every run; `labels` are the runs' own legend labels (used when no sweep axis
/// varies).
pub fn styles(runs: &[Run], labels: &[String]) -> Vec<Style> {
    let axes = varying_axes(runs);
    if axes.is_empty() {
        return labels
            .iter()
            .enumerate()
            .map(|(i, label)| Style {
                color: color(i),
                dashed: false,
                color_label: label.clone(),
                dash_label: None,
            })
            .collect();
    }
    // The colour axis: most values, the last one on a tie.
    let main = (0..axes.len())
        .rev()
        .max_by_key(|&k| axes[k].1.len())
        .unwrap_or(0);
    let others: Vec<&(String, Vec<String>)> = (0..axes.len())
        .filter(|&k| k != main)
        .map(|k| &axes[k])
        .collect();
    let mut combos: Vec<String> = Vec::new();
    for run in runs {
        let combo = describe(run, &others);
        if !combos.contains(&combo) {
            combos.push(combo);
        }
    }
    // A run without every axis (from another experiment) is drawn apart, under its own label.
    let complete = |run: &Run| axes.iter().all(|(key, _)| run.param(key).is_some());
    if combos.len() > 2 {
        let all: Vec<&(String, Vec<String>)> = axes.iter().collect();
        return by_value(runs, labels, complete, |run| describe(run, &all), |_| None);
    }
    let main_axis = [&axes[main]];
    by_value(
        runs,
        labels,
        complete,
        |run| describe(run, &main_axis),
        |run| (combos.len() == 2).then(|| describe(run, &others)),
    )
}

/// One colour per distinct `color_label`, dashed for the second distinct `dash_label`; the
/// runs that are not `complete` have their own label (after their experiment's name) and a
/// solid line.
fn by_value(
    runs: &[Run],
    labels: &[String],
    complete: impl Fn(&Run) -> bool,
    color_label: impl Fn(&Run) -> String,
    dash_label: impl Fn(&Run) -> Option<String>,
) -> Vec<Style> {
    let mut colors: Vec<String> = Vec::new();
    let mut dashes: Vec<String> = Vec::new();
    runs.iter()
        .zip(labels)
        .map(|(run, own)| {
            let complete = complete(run);
            let label = match complete {
                true => color_label(run),
                false if own.starts_with(&run.experiment) => own.clone(),
                false => format!("{}: {own}", run.experiment),
            };
            let k = colors.iter().position(|c| *c == label).unwrap_or_else(|| {
                colors.push(label.clone());
                colors.len() - 1
            });
            let dash = if complete { dash_label(run) } else { None };
            let dashed = dash.as_ref().is_some_and(|d| {
                if !dashes.contains(d) {
                    dashes.push(d.clone());
                }
                dashes.first() != Some(d)
            });
            Style {
                color: color(k),
                dashed,
                color_label: label,
                dash_label: dash
                    .map(|d| format!("{}: {d}", if dashed { "dashed" } else { "solid" })),
            }
        })
        .collect()
}

/// The legend of the runs `shown` (indices into `styles`): each colour once, then, if
/// `line_styles`, each line style once.
pub fn legend(
    styles: &[Style],
    shown: impl Iterator<Item = usize>,
    line_styles: bool,
) -> Vec<Entry> {
    let mut colors: Vec<Entry> = Vec::new();
    let mut dashes: Vec<Entry> = Vec::new();
    for i in shown {
        let style = &styles[i];
        if !colors.iter().any(|e| e.label == style.color_label) {
            colors.push(Entry::line(style.color_label.clone(), style.color));
        }
        if let Some(label) = style.dash_label.as_ref().filter(|_| line_styles) {
            if !dashes.iter().any(|e| e.label == *label) {
                dashes.push(Entry {
                    label: label.clone(),
                    color: STYLE_GREY,
                    dashed: style.dashed,
                    boxed: false,
                });
            }
        }
    }
    colors.extend(dashes);
    colors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, params: &[(&str, &str)]) -> Run {
        Run::named("e", name).with_params(params)
    }

    fn labels(runs: &[Run]) -> Vec<String> {
        crate::legend::labels(runs)
    }

    #[test]
    fn without_sweep_axes_every_run_has_its_colour() {
        let runs = [run("a", &[("seed", "0")]), run("b", &[("seed", "1")])];
        let s = styles(&runs, &labels(&runs));
        assert_ne!(s[0].color, s[1].color);
        assert_eq!(s[1].color_label, "seed=1");
        assert!(s.iter().all(|s| !s.dashed && s.dash_label.is_none()));
    }

    #[test]
    fn seeds_of_one_value_share_its_colour() {
        let runs = [
            run("0", &[("dataset.label_noise", "0.0"), ("seed", "0")]),
            run("1", &[("dataset.label_noise", "0.0"), ("seed", "1")]),
            run("2", &[("dataset.label_noise", "1.0"), ("seed", "0")]),
        ];
        let s = styles(&runs, &labels(&runs));
        assert_eq!(s[0].color, s[1].color);
        assert_ne!(s[0].color, s[2].color);
        let entries = legend(&s, 0..3, true);
        let texts: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(texts, ["label_noise=0.0", "label_noise=1.0"]);
    }

    #[test]
    fn two_axes_give_colours_and_line_styles() {
        let mut runs = Vec::new();
        for noise in ["0.0", "0.5"] {
            for c in ["0", "1", "2"] {
                runs.push(run(
                    c,
                    &[("dataset.label_noise", noise), ("aggregator.c", c)],
                ));
            }
        }
        let s = styles(&runs, &labels(&runs));
        // colour by c (three values), solid without noise, dashed with
        assert_eq!(s[0].color, s[3].color);
        assert_ne!(s[0].color, s[1].color);
        assert_eq!((s[0].dashed, s[3].dashed), (false, true));
        let entries = legend(&s, 0..6, true);
        let texts: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            texts,
            [
                "c=0",
                "c=1",
                "c=2",
                "solid: label_noise=0.0",
                "dashed: label_noise=0.5"
            ]
        );
    }

    #[test]
    fn a_run_without_the_axes_keeps_its_own_label() {
        let runs = [
            run("000-plugin=mean", &[("aggregator.plugin", "mean")]),
            run("001-plugin=rm3", &[("aggregator.plugin", "rm3")]),
            Run::named("baseline", "000"),
        ];
        let s = styles(&runs, &labels(&runs));
        assert_eq!(s[2].color_label, "baseline: 000");
        assert_ne!(s[2].color, s[0].color);
        assert_ne!(s[2].color, s[1].color);
    }

    #[test]
    fn more_than_two_combinations_of_the_other_axes_get_colours_of_their_own() {
        let mut runs = Vec::new();
        for a in ["x", "y", "z"] {
            for b in ["1", "2", "3", "4"] {
                runs.push(run(b, &[("a", a), ("b", b)]));
            }
        }
        let s = styles(&runs, &labels(&runs));
        let distinct: std::collections::HashSet<String> =
            s.iter().map(|s| s.color_label.clone()).collect();
        assert_eq!(distinct.len(), 12);
        assert!(s.iter().all(|s| !s.dashed));
        assert_eq!(s[5].color_label, "a=y b=2");
    }
}
