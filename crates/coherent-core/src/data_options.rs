//! Options every file-backed dataset plugin shares: where the files are, how many examples to
//! use, and label noise.
//!
//! A dataset with only these options reads them with [`DataOptions::from_args`] and lists
//! them with `params: DataOptions::params`. A dataset with keys of its own reads both with
//! [`DataOptions::split`] and lists both with `params: DataOptions::params_with::<Own>`:
//!
//! ```
//! use coherent_core::{DataOptions, PluginArgs, PluginConfig};
//! use serde::Deserialize;
//!
//! /// The keys of a CSV dataset besides the shared ones.
//! #[derive(Deserialize, PluginConfig)]
//! #[serde(deny_unknown_fields)]
//! struct Csv {
//!     /// Column separator.
//!     #[serde(default = "comma")]
//!     separator: char,
//! }
//! fn comma() -> char {
//!     ','
//! }
//!
//! let args = PluginArgs::from_toml("separator = ';'\nlabel_noise = 0.5").unwrap();
//! let (shared, own): (DataOptions, Csv) = DataOptions::split(&args).unwrap();
//! assert_eq!((shared.label_noise, own.separator), (0.5, ';'));
//! let names: Vec<&str> = DataOptions::params_with::<Csv>().into_iter().map(|p| p.name).collect();
//! assert_eq!(names.last(), Some(&"separator"));
//! ```

use crate::noise::{apply_label_noise, NoiseMode};
use crate::{ConfigError, ParamDoc, PluginArgs, PluginConfig, Split};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `path`, `train_limit`, `test_limit`, `label_noise`, `noise_mode`, `noise_seed`.
#[derive(Clone, Debug, Default, Deserialize, crate::PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct DataOptions {
    /// Directory holding the data files (a relative path resolves against the manifest's
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
    /// Reads the options from a dataset's table: parsed, checked, `path` resolved against the
    /// manifest's directory.
    pub fn from_args(args: &PluginArgs) -> Result<DataOptions, ConfigError> {
        let mut options: DataOptions = args.parse()?;
        options.validate(args)?;
        if let Some(path) = &options.path {
            options.path = Some(args.resolve_path("path", path)?);
        }
        Ok(options)
    }

    /// Reads a dataset's table holding these options and keys of the dataset's own, `T`
    /// (whose unknown-key errors also list these options).
    pub fn split<T: DeserializeOwned>(args: &PluginArgs) -> Result<(DataOptions, T), ConfigError> {
        let keys: Vec<&str> = DataOptions::params().into_iter().map(|p| p.name).collect();
        let (mine, own) = args.split_off(&keys);
        let own = own
            .parse::<T>()
            .map_err(|e| match e.message.starts_with("unknown field") {
                true => e.with_help(format!(
                    "the shared data options are valid too: {}",
                    keys.join(", ")
                )),
                false => e,
            })?;
        Ok((DataOptions::from_args(&mine)?, own))
    }

    /// The documentation of these options followed by `T`'s, for a dataset's `params`.
    pub fn params_with<T: PluginConfig>() -> Vec<ParamDoc> {
        let mut params = DataOptions::params();
        params.extend(T::params());
        params
    }

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

    #[derive(Debug, Deserialize, PluginConfig)]
    #[serde(deny_unknown_fields)]
    struct Own {
        /// A key of the dataset's own.
        #[serde(default)]
        columns: usize,
    }

    #[test]
    fn split_reads_both_and_explains_unknown_keys() {
        let args = PluginArgs::from_toml("columns = 3\ntrain_limit = 5").unwrap();
        let (shared, own) = DataOptions::split::<Own>(&args).unwrap();
        assert_eq!((shared.train_limit, own.columns), (Some(5), 3));
        let args = PluginArgs::from_toml("colums = 3").unwrap();
        let e = DataOptions::split::<Own>(&args).unwrap_err();
        assert!(e.message.contains("`columns`"), "{}", e.message);
        assert!(e.help.unwrap().contains("label_noise"));
        let args = PluginArgs::from_toml("columns = 3\nlabel_noise = 2.0").unwrap();
        let e = DataOptions::split::<Own>(&args).unwrap_err();
        assert!(e.message.contains("label_noise"), "{}", e.message);
    }
}
