//! Aggregator plugin `mean`: plain SGD, the baseline every suppression strategy is compared
//! with. The direction is the gradient of the batch-mean loss, `S / B` with
//! `S = sum_i g_i`; it needs no per-example quantity.

use coherent_core::{
    AggregatorEntry, ConfigError, GradRequest, GradientAggregator, Gradients, PluginArgs,
    PluginConfig,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// The mean of the per-example gradients.
#[derive(Clone, Debug, Default)]
pub struct MeanAggregator;

/// Parameters of `mean`: none.
#[derive(Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct MeanConfig {}

impl GradientAggregator for MeanAggregator {
    fn needs(&self) -> GradRequest {
        GradRequest::SUM
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        g.batch.mean_into(direction);
    }
}

/// Builds the `mean` plugin (it has no parameters).
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<MeanConfig, MeanAggregator>()?,
    ))
}

coherent_core::register! {
    AggregatorEntry {
        name: "mean",
        description: "Plain SGD: the mean of the per-example gradients of the batch.",
        params: MeanConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::BatchGrads;

    #[test]
    fn direction_is_the_mean_of_the_batch() {
        let grads = BatchGrads {
            batch_size: 4,
            sum: vec![vec![4.0, -8.0], vec![2.0]],
            ..Default::default()
        };
        let mut dir = vec![vec![0.0; 2], vec![0.0; 1]];
        MeanAggregator.aggregate(
            &Gradients {
                batch: &grads,
                blocks: None,
            },
            &mut dir,
        );
        assert_eq!(dir, vec![vec![1.0, -2.0], vec![0.5]]);
    }

    #[test]
    fn refuses_parameters() {
        assert!(build(&PluginArgs::from_toml("c = 2").unwrap()).is_err());
    }
}
