//! The one error of this crate: a file that could not be read or written, or holds something
//! else than the record.

use std::path::{Path, PathBuf};

/// A record file that could not be read or written, or is malformed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file was read, but does not hold what it should.
    #[error("{}{}: {problem}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line (1-based), for line-based files.
        line: Option<usize>,
        /// What is wrong.
        problem: String,
    },
    /// The run was stopped by a signal at `step`, its checkpoint saved.
    #[error("{}: interrupted at step {step}; `coherent run --resume` or `coherent sweep` continues it", dir.display())]
    Interrupted {
        /// The run directory.
        dir: PathBuf,
        /// The step it stopped before.
        step: usize,
    },
    /// Another live process writes the run directory.
    #[error("{}: the run directory is being written by {}; wait for it to end or stop it", dir.display(), holder.as_ref().map_or("another process".to_string(), |h| h.to_string()))]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// Who holds it, if its lock file says.
        holder: Option<crate::lock::Holder>,
    },
}

impl RecordError {
    /// A closure turning an I/O error on `path` into a [`RecordError`].
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
        move |source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A malformed file, at `line` if known.
    pub fn malformed(path: &Path, line: Option<usize>, problem: impl Into<String>) -> RecordError {
        RecordError::Malformed {
            path: path.to_path_buf(),
            line,
            problem: problem.into(),
        }
    }

    /// Whether another process writes the run directory (nothing was written to it).
    pub fn is_busy(&self) -> bool {
        matches!(self, RecordError::Busy { .. })
    }

    /// Whether the run was stopped by a signal (and marked so).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, RecordError::Interrupted { .. })
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RecordError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
