//! Options every file-backed dataset plugin shares: where the files are, how many examples to
//! use, and label noise.

use crate::noise::{apply_label_noise, NoiseMode};
use crate::{ConfigError, PluginArgs, Split};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `path`, `train_limit`, `test_limit`, `label_noise`, `noise_mode`, `noise_seed`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataOptions {
    /// Directory holding the data files.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Use only the first `train_limit` training examples.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only the first `test_limit` test examples.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Fraction of training labels corrupted, in `[0, 1]`.
    #[serde(default)]
    pub label_noise: f64,
    /// How corrupted labels are drawn.
    #[serde(default)]
    pub noise_mode: NoiseMode,
    /// Seed of the label noise (fixed by default, so every run sees the same corruption).
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

/// The parameter docs of [`DataOptions`], with the plugin's own description of `path`.
#[macro_export]
macro_rules! data_option_params {
    ($path_default:expr, $path_doc:expr) => {
        &[
            $crate::ParamDoc {
                name: "path",
                ty: "directory",
                default: $path_default,
                doc: $path_doc,
            },
            $crate::ParamDoc {
                name: "train_limit",
                ty: "integer",
                default: "all",
                doc: "use only the first N training examples",
            },
            $crate::ParamDoc {
                name: "test_limit",
                ty: "integer",
                default: "all",
                doc: "use only the first N test examples",
            },
            $crate::ParamDoc {
                name: "label_noise",
                ty: "float in [0, 1]",
                default: "0.0",
                doc: "fraction of training examples whose labels are corrupted",
            },
            $crate::ParamDoc {
                name: "noise_mode",
                ty: "\"permute\" | \"uniform\"",
                default: "\"permute\"",
                doc:
                    "permute the selected labels among themselves (CG) or draw them uniformly (WS)",
            },
            $crate::ParamDoc {
                name: "noise_seed",
                ty: "integer",
                default: "0",
                doc: "seed of the label noise, independent of the run seed",
            },
        ]
    };
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
