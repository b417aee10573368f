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
//! Where to look instead: the run directory is written by `coherent-runner` (`record.rs`,
//! `train.rs`); the text table printed after a run is `coherent_runner::report`.

mod error;
pub mod learning_times;
pub mod legend;
pub mod run;
pub mod spearman;
pub mod table;

pub use error::ReportError;
pub use learning_times::LearningTimes;
pub use run::{Metrics, Run};
pub use spearman::{spearman, SeedGroup};

use std::path::{Path, PathBuf};

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
