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

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RecordError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
