//! The plots of a report, one module each. A plot reads the runs and returns a [`Figure`] to
//! draw, or `None` when no run recorded its data; the drawing itself is in `chart.rs`.
//!
//! Every plot gives run `i` the colour `chart::color(i)`, so a run looks the same throughout
//! the report. To add a plot: a module here with `pub fn figure(&Context) -> Option<Figure>`,
//! and one line in [`PLOTS`].

mod accuracy;
mod coherence;
mod fractions;
mod layers;
mod learning;
mod other;

use crate::chart::{color, Entry, Figure, Line};
use crate::run::Run;
use crate::ReportOptions;

/// What every plot is given.
pub struct Context<'a> {
    /// The runs, in report order.
    pub runs: &'a [Run],
    /// Their legend labels.
    pub labels: &'a [String],
    /// The options of the report.
    pub options: &'a ReportOptions,
}

impl Context<'_> {
    /// The runs (with their index) that measured `key`.
    pub fn with<'b>(&'b self, key: &'b str) -> impl Iterator<Item = (usize, &'b Run)> + 'b {
        self.runs
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.metrics.series(key).is_some())
    }

    /// One line per run that measured `key`, in the run's colour.
    pub fn run_lines(&self, key: &str, dashed: bool) -> Vec<Line> {
        self.with(key)
            .map(|(i, r)| Line {
                points: r.metrics.series(key).unwrap_or_default().to_vec(),
                color: color(i),
                dashed,
            })
            .collect()
    }

    /// Legend entries of the runs that measured any of `keys`.
    pub fn run_legend(&self, keys: &[&str]) -> Vec<Entry> {
        self.runs
            .iter()
            .enumerate()
            .filter(|(_, r)| keys.iter().any(|k| r.metrics.series(k).is_some()))
            .map(|(i, _)| Entry::line(self.labels[i].clone(), color(i)))
            .collect()
    }
}

/// A plot of the report: its SVG file name, its section heading, what it shows.
pub struct Plot {
    /// File name in the output directory (`coherence.svg`).
    pub file: &'static str,
    /// Section heading of the page.
    pub heading: &'static str,
    /// One or two sentences under the heading.
    pub caption: String,
    /// What to draw.
    pub figure: Figure,
}

type Make = fn(&Context) -> Option<(String, Figure)>;

/// Every plot in page order: file name, heading, builder.
const PLOTS: &[(&str, &str, Make)] = &[
    ("coherence.svg", "m-coherence", coherence::figure),
    ("accuracy.svg", "Accuracy", accuracy::accuracy),
    ("loss.svg", "Loss", accuracy::loss),
    (
        "layer-coherence.svg",
        "m-coherence per layer",
        layers::figure,
    ),
    (
        "fractions.svg",
        "Pristine and corrupt fractions",
        fractions::figure,
    ),
    ("learning-times.svg", "Learning times", learning::figure),
    ("other-metrics.svg", "Other metrics", other::figure),
];

/// The plots whose data some run recorded.
pub fn all(cx: &Context) -> Vec<Plot> {
    PLOTS
        .iter()
        .filter_map(|(file, heading, make)| {
            make(cx).map(|(caption, figure)| Plot {
                file,
                heading,
                caption,
                figure,
            })
        })
        .collect()
}
