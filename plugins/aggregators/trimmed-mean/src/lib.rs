//! Aggregator plugin `trimmed_mean`: for every coordinate, the mean of the per-example values
//! without the `b` largest and `b` smallest (Yin et al. 2018).

use coherent_core::{
    AggregatorEntry, ConfigError, GradRequest, GradientAggregator, Gradients, OptimizerSettings,
    PluginArgs, PluginConfig, Refusal,
};
use coherent_robust::trim_all;
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `trimmed_mean`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct TrimmedConfig {
    /// Values dropped at each end of every coordinate.
    #[param(ty = "integer in 0..=(batch_size - 1) / 2")]
    pub b: usize,
}

/// Coordinate-wise trimmed mean.
#[derive(Clone, Debug)]
pub struct TrimmedMeanAggregator {
    b: usize,
}

impl GradientAggregator for TrimmedMeanAggregator {
    fn needs(&self) -> GradRequest {
        // nothing trimmed is plain SGD, which needs no per-example gradients
        if self.b == 0 {
            GradRequest::SUM
        } else {
            GradRequest::BLOCKS
        }
    }

    /// Refuses a `b` that would drop every value of a coordinate of the run's smallest batch.
    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, Refusal> {
        let max = settings.smallest_batch.saturating_sub(1) / 2;
        let problem = |batch| {
            let b = self.b;
            format!("dropping {b} values at each end of a coordinate leaves none of {batch}")
        };
        let help = "lower `b`, or choose a `batch_size` in [training] whose every batch has more than 2 b examples";
        settings.check_batch_bound("b", self.b, 0..=max, problem, help)
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        if self.b == 0 {
            return g.batch.mean_into(direction);
        }
        // `configure` accepted `b` for every batch of the run
        trim_all(g.blocks(), direction, self.b);
    }
}

/// Builds the `trimmed_mean` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let config: TrimmedConfig = args.parse()?;
    Ok(Box::new(TrimmedMeanAggregator { b: config.b }))
}

coherent_core::register! {
    AggregatorEntry {
        name: "trimmed_mean",
        description: "Coordinate-wise trimmed mean: drop the b largest and b smallest per-example values, average the rest.",
        params: TrimmedConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::{aggregate_examples, random_examples};

    #[test]
    fn matches_brute_force() {
        let g = random_examples(11, &[30], 4, 0.0);
        let mut a = build(&PluginArgs::from_toml("b = 3").unwrap()).unwrap();
        let dir = aggregate_examples(a.as_mut(), &g, 0);
        for c in 0..30 {
            let mut v: Vec<f32> = g.iter().map(|e| e[0][c]).collect();
            v.sort_by(f32::total_cmp);
            let want = v[3..8].iter().sum::<f32>() / 5.0;
            assert!((dir[0][c] - want).abs() < 1e-6);
        }
        assert!(build(&PluginArgs::empty()).is_err(), "b is required");
        let plain = build(&PluginArgs::from_toml("b = 0").unwrap()).unwrap();
        assert!(!plain.needs().blocks, "b = 0 is plain SGD");
    }

    #[test]
    fn a_b_the_batch_cannot_hold_is_refused_at_b() {
        let mut a = build(&PluginArgs::from_toml("b = 60").unwrap()).unwrap();
        let e = a.configure(OptimizerSettings::sgd(0.1, 100)).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("b"));
        assert_eq!(e.message, "dropping 60 values at each end of a coordinate leaves none of a batch of 100 (`batch_size`); `b` must be in 0..=49");
        let mut a = build(&PluginArgs::from_toml("b = 49").unwrap()).unwrap();
        assert!(a.configure(OptimizerSettings::sgd(0.1, 100)).is_ok());
        // the last batch of an epoch, smaller, is the one that limits `b`
        let last = OptimizerSettings {
            smallest_batch: 50,
            ..OptimizerSettings::sgd(0.1, 100)
        };
        let e = a.configure(last).unwrap_err();
        assert!(
            e.message
                .contains("the last batch of each epoch, 50 examples")
                && e.message.ends_with("0..=24"),
            "{e}"
        );
    }
}
