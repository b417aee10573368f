//! Aggregator plugin `median_of_means`: split the batch into `k` groups, average each, take
//! the coordinate-wise median of the `k` means. With `k = 3` it is M3 (Zielinski, Krishnan &
//! Chatterjee 2020, "Weak and Strong Gradient Directions", arXiv 2003.07422): a direction
//! survives only if at least two of the three groups support it. It needs only the `k` group
//! sums (`GradRequest::groups`), not per-example gradients.

use coherent_core::{
    AggregatorEntry, BatchGrads, ConfigError, GradRequest, GradientAggregator, Gradients,
    OptimizerSettings, PluginArgs, PluginConfig, Refusal,
};
use coherent_robust::median;
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `median_of_means`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct MomConfig {
    /// Number of groups.
    #[serde(default = "default_k")]
    #[param(ty = "integer in 1..=min(64, batch_size)")]
    pub k: usize,
}

fn default_k() -> usize {
    3
}

/// Median of `k` group means; group `g` holds examples `g B / k .. (g + 1) B / k` (the
/// batch is already shuffled).
#[derive(Clone, Debug)]
pub struct MedianOfMeansAggregator {
    k: usize,
}

impl GradientAggregator for MedianOfMeansAggregator {
    fn needs(&self) -> GradRequest {
        GradRequest {
            groups: self.k,
            ..GradRequest::SUM
        }
    }

    /// Refuses more groups than the run's smallest batch has examples (a group would be empty).
    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, Refusal> {
        let max = settings.smallest_batch.min(64);
        let problem = |batch| {
            let k = self.k;
            format!("{k} groups cannot be made of {batch}: every group needs an example")
        };
        let help = "lower `k`, or choose a `batch_size` in [training] whose every batch has at least k examples";
        settings.check_batch_bound("k", self.k, 1..=max, problem, help)
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        let b = g.batch_size();
        let groups = &g.batch.group_sums;
        let k = groups.len();
        let sizes: Vec<f32> = (0..k)
            .map(|g| BatchGrads::group_range(g, k, b).len() as f32)
            .collect();
        let mut means = [0.0f32; 64];
        for (l, d) in direction.iter_mut().enumerate() {
            for (c, x) in d.iter_mut().enumerate() {
                let means = &mut means[..k];
                for (g, m) in means.iter_mut().enumerate() {
                    *m = groups[g][l][c] / sizes[g];
                }
                *x = if k == 3 {
                    // median of three = sum - min - max, without a selection
                    let (u, v, w) = (means[0], means[1], means[2]);
                    u + v + w - u.min(v).min(w) - u.max(v).max(w)
                } else {
                    median(means)
                };
            }
        }
    }
}

/// Builds the `median_of_means` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let config: MomConfig = args.parse()?;
    if !(1..=64).contains(&config.k) {
        return Err(args.invalid("k", format!("must be between 1 and 64, got {}", config.k)));
    }
    Ok(Box::new(MedianOfMeansAggregator { k: config.k }))
}

coherent_core::register! {
    AggregatorEntry {
        name: "median_of_means",
        description: "Coordinate-wise median of the means of k groups of the batch (k = 3: M3 of Zielinski et al.).",
        params: MomConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::{aggregate_examples, random_examples};

    #[test]
    fn m3_matches_brute_force() {
        let g = random_examples(10, &[25], 7, 0.0);
        let mut a = build(&PluginArgs::empty()).unwrap();
        assert_eq!(
            (a.needs().groups, a.needs().blocks),
            (3, false),
            "no per-example gradients"
        );
        let dir = aggregate_examples(a.as_mut(), &g, 3);
        for c in 0..25 {
            // groups 0..3, 3..6, 6..10
            let mean = |r: std::ops::Range<usize>| {
                r.clone().map(|i| g[i][0][c]).sum::<f32>() / r.len() as f32
            };
            let mut m = [mean(0..3), mean(3..6), mean(6..10)];
            m.sort_by(f32::total_cmp);
            assert!((dir[0][c] - m[1]).abs() < 1e-6);
        }
        assert!(build(&PluginArgs::from_toml("k = 0").unwrap()).is_err());
    }

    #[test]
    fn one_group_is_the_mean() {
        let g: Vec<Vec<Vec<f32>>> = (0..4).map(|i| vec![vec![i as f32, -(i as f32)]]).collect();
        let mut a = build(&PluginArgs::from_toml("k = 1").unwrap()).unwrap();
        let dir = aggregate_examples(a.as_mut(), &g, 1);
        assert_eq!(dir, vec![vec![1.5, -1.5]]);
    }
}
