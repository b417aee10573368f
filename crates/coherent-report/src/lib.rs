//! Reports of `coherent` runs: run directories in, SVG plots and two pages out.
//!
//! [`expand_dirs`] turns what a user names (run directories, or experiment directories holding
//! them) into run directories; [`render`] reads them and writes into one output directory
//!
//! * one SVG file per plot whose data some run recorded: `coherence.svg` (m-coherence with
//!   reference lines at 1 and m), `accuracy.svg`, `loss.svg`, `layer-coherence.svg`,
//!   `fractions.svg` (f_pristine / f_corrupt and their null-world values),
//!   `learning-times.svg` (histograms), `other-metrics.svg`;
//! * `report.html`, self-contained (the SVGs inlined, no external resources), with the
//!   summary table and, for runs that differ only in their seed, the Spearman correlation of
//!   their learning times ([`spearman()`]);
//! * `report.md`, the same with links to the SVG files.
//!
//! The key decision: everything is drawn as SVG through plotters' SVG backend, whose text is
//! plain `<text>` laid out by the viewer, so the reports need no fonts, no system libraries
//! and no network. The reader ([`Run`]) tolerates missing files and keys, since runs differ in
//! what they measure; what is there must be well formed, and errors name file and line.
//!
//! Where to look instead: the files of a run directory and their schema are
//! `coherent-record` (which this crate reads through, and whose comparison table is the report's
//! summary table); they are written by the trainer of `coherent-runner`.

mod chart;
mod error;
pub mod learning_times;
pub mod legend;
mod page;
mod plots;
pub mod run;
pub mod spearman;
mod style;
pub mod table;

pub use error::ReportError;
pub use learning_times::LearningTimes;
pub use run::{Metrics, Run};
pub use spearman::{spearman, SeedGroup};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How to draw a report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Logarithmic y axes for coherence, loss and the other metrics (accuracies stay linear).
    pub log_scale: bool,
}

/// The files a report wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// `report.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// The SVG files, in page order.
    pub svgs: Vec<PathBuf>,
}

/// Whether `dir` is a run directory (holds `metrics.jsonl`).
pub fn is_run_dir(dir: &Path) -> bool {
    dir.join("metrics.jsonl").is_file()
}

/// Expands each directory to run directories: a run directory stays as it is; any other
/// directory stands for its subdirectories that are run directories, sorted by name. A
/// directory that yields no run is an error.
pub fn expand_dirs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ReportError> {
    let mut runs = Vec::new();
    for dir in dirs {
        if is_run_dir(dir) {
            runs.push(dir.clone());
            continue;
        }
        let entries = std::fs::read_dir(dir).map_err(ReportError::io(dir))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry.map_err(ReportError::io(dir))?.path();
            if is_run_dir(&path) {
                found.push(path);
            }
        }
        if found.is_empty() {
            return Err(ReportError::NoRuns { path: dir.clone() });
        }
        found.sort();
        runs.extend(found);
    }
    Ok(runs)
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(ReportError::io(path))
}

/// Reads the run directories `run_dirs` and writes the report into `out` (created if need
/// be): the SVG files of the plots that have data, `report.html` and `report.md`.
pub fn render(
    run_dirs: &[PathBuf],
    out: &Path,
    options: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    let runs = run_dirs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let labels = legend::labels(&runs);
    let cx = plots::Context::new(&runs, &labels, options);
    let plots = plots::all(&cx);
    std::fs::create_dir_all(out).map_err(ReportError::io(out))?;
    let mut svgs = Vec::new();
    for plot in &plots {
        let path = out.join(plot.file);
        let svg = plot.figure.to_svg().map_err(|message| ReportError::Plot {
            path: path.clone(),
            message,
        })?;
        write(&path, &svg)?;
        svgs.push((path, svg));
    }
    let experiments: BTreeSet<&str> = runs.iter().map(|r| r.experiment.as_str()).collect();
    let sources: BTreeSet<String> = run_dirs
        .iter()
        .map(|d| d.parent().unwrap_or(d).display().to_string())
        .collect();
    let table = table::summary(&runs);
    let seeds = spearman::seed_groups(&runs);
    let page = page::Page {
        title: format!(
            "Report: {}",
            experiments.into_iter().collect::<Vec<_>>().join(", ")
        ),
        sources: sources.into_iter().collect(),
        table: &table,
        plots: plots
            .iter()
            .zip(&svgs)
            .map(|(p, (_, svg))| (p, svg.as_str()))
            .collect(),
        seeds: &seeds,
    };
    let html = out.join("report.html");
    write(&html, &page.html())?;
    let markdown = out.join("report.md");
    write(&markdown, &page.markdown())?;
    Ok(ReportFiles {
        html,
        markdown,
        svgs: svgs.into_iter().map(|(p, _)| p).collect(),
    })
}
