//! The runner's own manifest sections: `[training]`, `[evaluation]` and `[record]`.

use coherent_core::{ConfigError, ParamType, PluginArgs, PluginConfig};
use serde::{Deserialize, Serialize};

/// The optimizer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ParamType)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// Stochastic gradient descent with optional momentum and weight decay (PyTorch's
    /// formulation: `v = mu v + (d + wd w)`, `w -= lr v`).
    #[default]
    Sgd,
}

/// The runner's own sections whose keys are documented from their types, listed by
/// `coherent plugins` like plugins.
pub fn listing() -> Vec<coherent_core::Listing> {
    vec![coherent_core::Listing {
        name: "[training]",
        description: "How the model is optimised (every key optional).",
        params: TrainingConfig::params(),
        krate: coherent_core::this_crate!(),
    }]
}

/// `[training]`: how the model is optimised.
#[derive(Clone, Debug, Deserialize, Serialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// The optimizer.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Momentum coefficient in `[0, 1)`.
    #[serde(default)]
    pub momentum: f64,
    /// L2 weight decay added to the direction.
    #[serde(default)]
    pub weight_decay: f64,
    /// Examples per step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Passes over the training set.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Stop after this many steps, even mid-epoch.
    #[serde(default)]
    #[param(default = "none")]
    pub max_steps: Option<usize>,
    /// Save a checkpoint every this many steps (0: never), for `coherent run --resume`.
    #[serde(default)]
    #[param(default = "once per epoch")]
    pub checkpoint_every: Option<usize>,
}

fn default_lr() -> f64 {
    0.1
}
fn default_batch() -> usize {
    100
}
fn default_epochs() -> usize {
    1
}

impl TrainingConfig {
    /// The optimizer's settings.
    pub fn optimizer(&self) -> coherent_core::OptimizerSettings {
        coherent_core::OptimizerSettings {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        }
    }

    /// Every value out of range, located in `args`.
    pub fn validate(&self, args: &PluginArgs) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if !(self.lr.is_finite() && self.lr > 0.0) {
            errors.push(args.invalid("lr", format!("must be a positive number, got {}", self.lr)));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            errors.push(args.invalid(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            errors.push(args.invalid(
                "weight_decay",
                format!("must be >= 0, got {}", self.weight_decay),
            ));
        }
        if self.batch_size == 0 {
            errors.push(args.invalid("batch_size", "must be at least 1"));
        }
        if self.epochs == 0 {
            errors.push(args.invalid("epochs", "must be at least 1"));
        }
        if self.max_steps == Some(0) {
            errors.push(args.invalid("max_steps", "must be at least 1"));
        }
        errors
    }
}

/// `[evaluation]`: when and on what the model is evaluated (every key optional).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Evaluate every this many steps (default: the most frequent metric, else once per epoch).
    pub every_steps: Option<usize>,
    /// Evaluate the training loss and accuracy on the first N training examples only.
    pub train_limit: Option<usize>,
    /// Deprecated: `[[observers]] plugin = "loss_fractions"`, key `every`.
    pub fractions_every: Option<usize>,
    /// Deprecated: `[[observers]] plugin = "learning_times"`, key `enabled`.
    pub learning_times: Option<bool>,
    /// Deprecated: `[[observers]] plugin = "early_stopping"`, key `corrupt_rise`.
    pub corrupt_rise: Option<f64>,
    /// Write the report (plots and page) into the run directory at the end of the run
    /// (default true).
    pub plots: Option<bool>,
}

/// The keys of `[evaluation]` that moved to an observer's table: `(key, observer, its key)`.
pub const MOVED_TO_OBSERVERS: &[(&str, &str, &str)] = &[
    ("fractions_every", "loss_fractions", "every"),
    ("learning_times", "learning_times", "enabled"),
    ("corrupt_rise", "early_stopping", "corrupt_rise"),
];

impl EvaluationConfig {
    /// Whether the run draws its report at the end.
    pub fn plots(&self) -> bool {
        self.plots.unwrap_or(true)
    }

    /// Every value out of range, located in `args` (the deprecated keys are checked by the
    /// observers they configure).
    pub fn validate(&self, args: &PluginArgs) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.every_steps == Some(0) {
            errors.push(args.invalid("every_steps", "must be at least 1"));
        }
        if self.train_limit == Some(0) {
            errors.push(args.invalid("train_limit", "must be at least 1"));
        }
        errors
    }
}

/// `[record]`: what the run keeps besides its metrics (every key optional).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Also keep the weights every this many steps, as `weights/step-<N>.safetensors`
    /// (default 0: only `initial` and `final`).
    pub weights_every: usize,
}

impl RecordConfig {
    /// Every value out of range, located in `args` (none can be, so far).
    pub fn validate(&self, _args: &PluginArgs) -> Vec<ConfigError> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_range_checks() {
        let args = PluginArgs::empty();
        let t: TrainingConfig = args.parse().unwrap();
        assert_eq!((t.lr, t.batch_size, t.epochs), (0.1, 100, 1));
        assert!(t.validate(&args).is_empty());
        let text = "batch_size = 0\nlr = -1.0\nmomentum = 1.0";
        let args = PluginArgs::from_toml(text).unwrap();
        let t: TrainingConfig = args.parse().unwrap();
        let errors = t.validate(&args);
        assert_eq!(errors.len(), 3);
        assert_eq!(&text[errors[0].span.clone().unwrap()], "-1.0");
    }
}
