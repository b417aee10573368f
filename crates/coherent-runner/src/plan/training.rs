//! `[training]` against the data: the batch fits the training set, and the run's steps are
//! countable and at most [`crate::settings::MAX_STEPS`].

use super::sections::{Sections, Value};
use crate::manifest::get;
use crate::settings::{TrainingConfig, STEPS_HELP};
use coherent_core::{ConfigError, PluginArgs};

/// Checks `t` (read from `args`) against a training set of `n` examples.
pub fn check(cx: &mut Sections<'_>, root: &Value, args: &PluginArgs, t: &TrainingConfig, n: usize) {
    if t.batch_size > n {
        let message = format!(
            "{} is larger than the training set ({n} examples)",
            t.batch_size
        );
        if args.has("batch_size") {
            cx.error(args.invalid("batch_size", message));
        } else {
            // the default: point at the data, which is what is small
            let span = get(root, "dataset").map(|d| d.span());
            cx.error(
                ConfigError::new(span, format!("the default `batch_size`, {message}")).with_help(
                    "set `batch_size` in [training] to at most the number of training examples",
                ),
            );
        }
        return;
    }
    if let Err(r) = t.steps(n) {
        cx.error(args.invalid(r.key, r.message).with_help(STEPS_HELP));
    }
}
