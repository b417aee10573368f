//! The `Dataset` trait: a train and a test split held in memory.

use crate::{InputShape, Split, Targets};
use std::path::PathBuf;

/// A data set: a training split (possibly with corrupted labels) and a test split.
///
/// Dataset plugins read their files once when built; label noise is applied by the plugin
/// with [`crate::noise::apply_label_noise`] so that the corruption mask stays with the data.
pub trait Dataset: Send + Sync {
    /// Shape of one input example.
    fn input_shape(&self) -> InputShape;

    /// The training split.
    fn train(&self) -> &Split;

    /// The test split.
    fn test(&self) -> &Split;

    /// What the loader accepted but the user should know, one sentence each, naming the file
    /// (a file with fewer examples than its format's): the runner shows them as warnings when
    /// the dataset is built. None by default.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Number of model outputs the data needs: classes, or 1 for regression targets.
    fn outputs(&self) -> usize {
        match &self.train().targets {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values(_) => 1,
        }
    }
}

/// A data file that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: {}", path.display(), io_advice(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file was read but its content is not what the format requires.
    #[error("{}: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
}

/// What went wrong reading a data file, and what to do about it.
fn io_advice(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("{e}: check the dataset's `path` (the directory holding the data files)")
        }
        std::io::ErrorKind::PermissionDenied => format!("{e}: make the file readable"),
        _ => e.to_string(),
    }
}
