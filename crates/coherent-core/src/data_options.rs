//! Options every file-backed dataset plugin shares: where the files are, how many examples to
//! use, and label noise.

use crate::noise::{apply_label_noise, NoiseMode};
use crate::{ConfigError, PluginArgs, Split};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `path`, `train_limit`, `test_limit`, `label_noise`, `noise_mode`, `noise_seed`.
#[derive(Clone, Debug, Default, Deserialize, crate::PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct DataOptions {
    /// Directory holding the data files (relative paths resolve against the working
    /// directory); required unless the dataset bundles its data.
    #[serde(default)]
    #[param(ty = "directory")]
    pub path: Option<PathBuf>,
    /// Use only the first N training examples.
    #[serde(default)]
    #[param(default = "all")]
    pub train_limit: Option<usize>,
    /// Use only the first N test examples.
    #[serde(default)]
    #[param(default = "all")]
    pub test_limit: Option<usize>,
    /// Fraction of training examples whose labels are corrupted, in [0, 1].
    #[serde(default)]
    pub label_noise: f64,
    /// Permute the selected labels among themselves (Chatterjee 2020) or draw them uniformly
    /// (Zielinski et al. 2020).
    #[serde(default)]
    pub noise_mode: NoiseMode,
    /// Seed of the label noise, independent of the run seed (fixed by default, so every run
    /// sees the same corruption).
    #[serde(default)]
    pub noise_seed: u64,
}

impl DataOptions {
    /// Checks the values that serde cannot.
    pub fn validate(&self, args: &PluginArgs) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.label_noise) {
            return Err(args.invalid(
                "label_noise",
                format!("must be a fraction in [0, 1], got {}", self.label_noise),
            ));
        }
        for (key, v) in [
            ("train_limit", self.train_limit),
            ("test_limit", self.test_limit),
        ] {
            if v == Some(0) {
                return Err(args.invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// The directory, which this dataset cannot do without.
    pub fn require_path(&self, args: &PluginArgs, what: &str) -> Result<&Path, ConfigError> {
        self.path.as_deref().ok_or_else(|| {
            ConfigError::new(
                Some(args.span_of("path")),
                format!("`path` is required: the directory holding {what}"),
            )
            .with_help("the data cannot be downloaded by the program; point `path` at your copy")
        })
    }

    /// Applies the limits to both splits and the label noise to the training split.
    pub fn apply(&self, train: &mut Split, test: &mut Split) {
        if let Some(n) = self.train_limit {
            train.truncate(n);
        }
        if let Some(n) = self.test_limit {
            test.truncate(n);
        }
        apply_label_noise(train, self.label_noise, self.noise_mode, self.noise_seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_required_path_is_explained() {
        let args = PluginArgs::from_toml("label_noise = 0.5").unwrap();
        let o: DataOptions = args.parse().unwrap();
        let e = o.require_path(&args, "data_batch_1.bin").unwrap_err();
        assert!(e.message.contains("`path` is required") && e.help.is_some());
        let args = PluginArgs::from_toml("test_limit = 0").unwrap();
        assert!(args
            .parse::<DataOptions>()
            .unwrap()
            .validate(&args)
            .is_err());
    }
}
