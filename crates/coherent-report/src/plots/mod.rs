//! The plots of a report, one module each. A plot reads the runs and returns a [`Figure`] to
//! draw, or `None` when no run recorded its data; the drawing itself is in `chart.rs`.
//!
//! Every plot draws run `i` in its style (`Context::styles`, see `style.rs`), so a run looks
//! the same throughout the report. To add a plot: a module here with
//! `pub fn figure(&Context) -> Option<Figure>`, and one line in [`PLOTS`].

mod accuracy;
mod coherence;
mod fractions;
mod layers;
mod learning;
mod other;

use crate::chart::{Entry, Figure, Line};
use crate::run::Run;
use crate::style::{self, Style};
use crate::ReportOptions;

/// What every plot is given.
pub struct Context<'a> {
    /// The runs, in report order.
    pub runs: &'a [Run],
    /// Their legend labels.
    pub labels: &'a [String],
    /// The options of the report.
    pub options: &'a ReportOptions,
    /// How each run is drawn.
    pub styles: Vec<Style>,
}

impl<'a> Context<'a> {
    /// The context of a report over `runs`, labelled `labels`.
    pub fn new(runs: &'a [Run], labels: &'a [String], options: &'a ReportOptions) -> Context<'a> {
        Context {
            runs,
            labels,
            options,
            styles: style::styles(runs, labels),
        }
    }

    /// The runs (with their index) that measured `key`.
    pub fn with<'b>(&'b self, key: &'b str) -> impl Iterator<Item = (usize, &'b Run)> + 'b {
        self.runs
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.metrics.series(key).is_some())
    }

    /// One line per run that measured `key`, in the run's style (`dashed` dashes them all).
    pub fn run_lines(&self, key: &str, dashed: bool) -> Vec<Line> {
        let which = self.with(key).map(|(i, _)| i);
        self.lines_of(which, key, dashed.then_some(true))
    }

    /// One line of `key` for each of the runs `which` that measured it, in the run's colour,
    /// solid or dashed as `dashed` says or else as the run's style.
    pub fn lines_of(
        &self,
        which: impl Iterator<Item = usize>,
        key: &str,
        dashed: Option<bool>,
    ) -> Vec<Line> {
        which
            .filter_map(|i| {
                Some(Line {
                    points: self.runs[i].metrics.series(key)?.to_vec(),
                    color: self.styles[i].color,
                    dashed: dashed.unwrap_or(self.styles[i].dashed),
                })
            })
            .collect()
    }

    /// Legend entries of the runs that measured any of `keys`.
    pub fn run_legend(&self, keys: &[&str]) -> Vec<Entry> {
        let shown = self
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| keys.iter().any(|k| r.metrics.series(k).is_some()))
            .map(|(i, _)| i);
        self.legend_of(shown, true)
    }

    /// Legend entries of the runs `which`: their colours, and their line styles if
    /// `line_styles`.
    pub fn legend_of(&self, which: impl Iterator<Item = usize>, line_styles: bool) -> Vec<Entry> {
        style::legend(&self.styles, which, line_styles)
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
