//! The one error type of the crate: every problem names the file (and line) it is about.

use std::path::PathBuf;

/// What went wrong while reading run directories or writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file's content is not what it should be; `line` is 1-based where it is known.
    #[error("{}{}: {message}", path.display(), line.map_or(String::new(), |l| format!(":{l}")))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line of the problem, for line-oriented files.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A directory given is neither a run directory nor holds any.
    #[error(
        "{}: no runs (neither a metrics.jsonl here nor subdirectories holding one)",
        path.display()
    )]
    NoRuns {
        /// The directory.
        path: PathBuf,
    },
    /// A plot could not be drawn.
    #[error("{}: cannot draw the plot: {message}", path.display())]
    Plot {
        /// The SVG file of the plot.
        path: PathBuf,
        /// What the plotting library reported.
        message: String,
    },
}

impl From<coherent_record::RecordError> for ReportError {
    fn from(e: coherent_record::RecordError) -> ReportError {
        match e {
            coherent_record::RecordError::Io { path, source } => ReportError::Io { path, source },
            coherent_record::RecordError::Malformed {
                path,
                line,
                problem,
            } => ReportError::Malformed {
                path,
                line,
                message: problem,
            },
            other @ (coherent_record::RecordError::Busy { .. }
            | coherent_record::RecordError::Interrupted { .. }) => ReportError::Malformed {
                path: PathBuf::new(),
                line: None,
                message: other.to_string(),
            },
        }
    }
}

impl ReportError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ReportError {
        let path = path.into();
        move |source| ReportError::Io { path, source }
    }
}
