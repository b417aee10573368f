//! Aggregator plugin `coordinate_median`: the coordinate-wise median of the per-example
//! gradients of the batch (Yin et al. 2018, "Byzantine-robust distributed learning"), the
//! extreme case of suppressing directions supported by few examples.

use coherent_core::{
    AggregatorEntry, ConfigError, GradRequest, GradientAggregator, Gradients, PluginArgs,
    PluginConfig,
};
use coherent_robust::median_all;
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `coordinate_median`: none.
#[derive(Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct MedianConfig {}

/// Coordinate-wise median.
#[derive(Clone, Debug, Default)]
pub struct CoordinateMedianAggregator;

impl GradientAggregator for CoordinateMedianAggregator {
    fn needs(&self) -> GradRequest {
        GradRequest::BLOCKS
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        median_all(g.blocks(), direction);
    }
}

/// Builds the `coordinate_median` plugin (it has no parameters).
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<MedianConfig, CoordinateMedianAggregator>()?,
    ))
}

coherent_core::register! {
    AggregatorEntry {
        name: "coordinate_median",
        description: "Coordinate-wise median of the per-example gradients of the batch.",
        params: MedianConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::aggregate_examples;

    #[test]
    fn matches_brute_force() {
        let mut r = coherent_core::Rng::new(3);
        for b in [1, 2, 5, 8] {
            let g: Vec<Vec<Vec<f32>>> = (0..b)
                .map(|_| vec![(0..40).map(|_| r.normal() as f32).collect()])
                .collect();
            let dir = aggregate_examples(&mut CoordinateMedianAggregator, &g, 0);
            for c in 0..40 {
                let mut v: Vec<f32> = g.iter().map(|e| e[0][c]).collect();
                v.sort_by(f32::total_cmp);
                let want = if b % 2 == 1 {
                    v[b / 2]
                } else {
                    (v[b / 2 - 1] + v[b / 2]) / 2.0
                };
                assert!((dir[0][c] - want).abs() < 1e-6);
            }
        }
    }
}
