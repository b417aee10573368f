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

/// The most steps a run may have: 10^12 (at a microsecond per step, eleven days of training;
/// a larger count is a typing error, or an overflow).
pub const MAX_STEPS: usize = 1_000_000_000_000;

/// The steps of a run, from `[training]` and the size of the training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Steps per epoch (the last batch of an epoch may be smaller).
    pub per_epoch: usize,
    /// Steps of the whole run.
    pub total: usize,
}

/// A value of `[training]` that cannot work: its key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The key.
    pub key: &'static str,
    /// What is wrong, in words (without the key).
    pub message: String,
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
    /// The optimizer's settings for a training set of `n` examples (`None`: unknown, every
    /// batch taken as full).
    pub fn optimizer(&self, n: Option<usize>) -> coherent_core::OptimizerSettings {
        let last = n.map_or(0, |n| n % self.batch_size.max(1));
        coherent_core::OptimizerSettings {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            smallest_batch: if last == 0 { self.batch_size } else { last },
        }
    }

    /// The steps of a run over `n` training examples, computed with checked arithmetic and at
    /// most [`MAX_STEPS`]; what does not fit is refused at its key.
    pub fn steps(&self, n: usize) -> Result<Steps, Refused> {
        let refuse = |key, message: String| Refused { key, message };
        let per_epoch = n.div_ceil(self.batch_size.max(1));
        if let Some(max) = self.max_steps.filter(|&m| m > MAX_STEPS) {
            return Err(refuse("max_steps", too_many(max as u128)));
        }
        let epochs = self.epochs as u128 * per_epoch as u128;
        let total = match self.max_steps {
            Some(max) => epochs.min(max as u128),
            None => epochs,
        };
        if total > MAX_STEPS as u128 || self.epochs > MAX_STEPS {
            let product = format!(
                "{} epochs of {} steps ({n} training examples in batches of {})",
                count(self.epochs as u128),
                count(per_epoch as u128),
                self.batch_size
            );
            return Err(refuse(
                "epochs",
                format!("{product} are {}", too_many(epochs)),
            ));
        }
        Ok(Steps {
            per_epoch,
            total: total as usize,
        })
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
        if self.epochs > MAX_STEPS {
            let message = format!(
                "{} epochs are at least as many steps, more than a run may have (at most {})",
                count(self.epochs as u128),
                count(MAX_STEPS as u128)
            );
            errors.push(args.invalid("epochs", message).with_help(STEPS_HELP));
        }
        if self.max_steps == Some(0) {
            errors.push(args.invalid("max_steps", "must be at least 1"));
        }
        if let Some(max) = self.max_steps.filter(|&m| m > MAX_STEPS) {
            errors.push(
                args.invalid("max_steps", too_many(max as u128))
                    .with_help(STEPS_HELP),
            );
        }
        errors
    }
}

/// What to do about a run of too many steps.
pub const STEPS_HELP: &str =
    "a run has at most 10^12 steps; lower `epochs`, or set `max_steps` to stop the run earlier";

/// `... steps, more than a run may have (at most 1,000,000,000,000)`.
fn too_many(steps: u128) -> String {
    format!(
        "{} steps, more than a run may have (at most {})",
        count(steps),
        count(MAX_STEPS as u128)
    )
}

fn count(n: u128) -> String {
    coherent_core::memory::count_text(n)
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

    fn training(text: &str) -> TrainingConfig {
        PluginArgs::from_toml(text).unwrap().parse().unwrap()
    }

    #[test]
    fn steps_are_checked_and_bounded() {
        let t = training("batch_size = 100\nepochs = 3");
        assert_eq!(
            t.steps(1050),
            Ok(Steps {
                per_epoch: 11,
                total: 33
            })
        );
        let t = training("batch_size = 100\nepochs = 3\nmax_steps = 20");
        assert_eq!(t.steps(1050).unwrap().total, 20);
        // the user's report: 4 steps per epoch times this wraps around to 4 without checks
        let t = training("epochs = 1844674407370955162");
        let e = t.steps(400).unwrap_err();
        assert_eq!(e.key, "epochs");
        assert!(
            e.message.starts_with("1,844,674,407,370,955,162 epochs of 4 steps (400 training examples in batches of 100) are 7,378,697,629,483,820,648 steps, more than a run may have (at most 1,000,000,000,000)"),
            "{}",
            e.message
        );
        let t = training("epochs = 9223372036854775807\nbatch_size = 1");
        assert_eq!(t.steps(usize::MAX).unwrap_err().key, "epochs");
        // a bounded number of steps makes many epochs harmless, but not absurd ones
        let t = training("epochs = 100000000000\nmax_steps = 10");
        assert_eq!(t.steps(8000).unwrap().total, 10);
        let t = training("max_steps = 1000000000001");
        assert_eq!(t.steps(8000).unwrap_err().key, "max_steps");
        let text = "epochs = 1844674407370955162\nmax_steps = 18446744073709551615";
        let args = PluginArgs::from_toml(text).unwrap();
        let errors = training(text).validate(&args);
        let spans: Vec<&str> = errors
            .iter()
            .map(|e| &text[e.span.clone().unwrap()])
            .collect();
        assert_eq!(spans, ["1844674407370955162", "18446744073709551615"]);
        assert!(errors[0]
            .message
            .contains("epochs are at least as many steps"));
    }
}
