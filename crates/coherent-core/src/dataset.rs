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
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file was read but its content is not what the format requires.
    #[error("{path}: {problem}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
}
