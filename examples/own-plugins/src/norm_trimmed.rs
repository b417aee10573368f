//! Aggregator plugin `norm_trimmed`: the mean of a batch's per-example gradients without the
//! `drop` largest ones (by whole-network norm).
//!
//! A suppression strategy in the spirit of the Coherent Gradients theory: an example whose
//! gradient is much longer than the others' (often a mislabelled one being memorised) moves
//! the weights alone; leaving the longest few out of each step slows memorisation while the
//! directions many examples share still add up. The direction is
//! `sum_{i kept} g_i / (B - drop)`.

use coherent_core::{
    AggregatorEntry, ConfigError, GradRequest, GradientAggregator, Gradients, OptimizerSettings,
    PluginArgs, PluginConfig, Refusal,
};
use coherent_robust::coordinatewise;
use serde::Deserialize;

/// Parameters of `norm_trimmed`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct NormTrimmedConfig {
    /// How many of the batch's longest per-example gradients each step leaves out.
    #[serde(default = "default_drop")]
    #[param(ty = "integer in 0..batch_size")]
    pub drop: usize,
}

fn default_drop() -> usize {
    1
}

/// The aggregator: the weight of each example of the current batch, reused step to step.
#[derive(Clone, Debug)]
pub struct NormTrimmed {
    drop: usize,
    weights: Vec<f32>,
    order: Vec<usize>,
}

impl GradientAggregator for NormTrimmed {
    fn needs(&self) -> GradRequest {
        // The norms say which examples to leave out; the blocks give their gradients.
        GradRequest {
            sq_norms: true,
            blocks: true,
            ..GradRequest::SUM
        }
    }

    /// Refuses a `drop` that would leave no example of the run's smallest batch.
    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, Refusal> {
        let n = settings.smallest_batch;
        if self.drop >= n {
            let message = format!(
                "leaving out {} examples leaves none of {}; `drop` must be in 0..={}",
                self.drop,
                settings.smallest_text(),
                n.saturating_sub(1)
            );
            return Err(
                Refusal::at("drop", message).with_help("lower `drop`, or raise `batch_size`")
            );
        }
        Ok(settings)
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        let b = g.batch_size();
        // `configure` accepted `drop` for every batch of the run
        let drop = self.drop;
        self.order.clear();
        self.order.extend(0..b);
        let norm = |i: &usize| g.batch.example_sq_norm(*i);
        self.order.sort_by(|i, j| norm(j).total_cmp(&norm(i)));
        self.weights.clear();
        self.weights.resize(b, 1.0 / (b - drop) as f32);
        for &i in &self.order[..drop] {
            self.weights[i] = 0.0;
        }
        let weights = &self.weights;
        coordinatewise(g.blocks(), direction, |v| {
            v.iter().zip(weights).map(|(x, w)| x * w).sum()
        });
    }
}

/// Builds the `norm_trimmed` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let config: NormTrimmedConfig = args.parse()?;
    Ok(Box::new(NormTrimmed {
        drop: config.drop,
        weights: Vec::new(),
        order: Vec::new(),
    }))
}

coherent_core::register! {
    AggregatorEntry {
        name: "norm_trimmed",
        description: "Mean of the per-example gradients without the `drop` longest ones of each batch.",
        params: NormTrimmedConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::{aggregate_examples, dot, random_examples};

    /// Brute force: sort the examples by norm, average all but the `drop` longest.
    fn reference(grads: &[Vec<Vec<f32>>], drop: usize) -> Vec<Vec<f32>> {
        let norm = |g: &Vec<Vec<f32>>| g.iter().map(|l| dot(l, l)).sum::<f64>();
        let mut order: Vec<usize> = (0..grads.len()).collect();
        order.sort_by(|&i, &j| norm(&grads[j]).total_cmp(&norm(&grads[i])));
        let kept = &order[drop..];
        (0..grads[0].len())
            .map(|l| {
                (0..grads[0][l].len())
                    .map(|c| {
                        let sum: f64 = kept.iter().map(|&i| grads[i][l][c] as f64).sum();
                        (sum / kept.len() as f64) as f32
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn direction_is_the_mean_without_the_longest_gradients() {
        let grads = random_examples(12, &[30, 4], 3, 0.2);
        for drop in [0, 1, 3] {
            let args = PluginArgs::from_toml(&format!("drop = {drop}")).unwrap();
            let got = aggregate_examples(build(&args).unwrap().as_mut(), &grads, 0);
            let want = reference(&grads, drop);
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((g - w).abs() < 1e-5, "drop {drop}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn a_drop_that_leaves_no_example_is_refused_at_drop() {
        let mut a = build(&PluginArgs::from_toml("drop = 12").unwrap()).unwrap();
        let e = a.configure(OptimizerSettings::sgd(0.1, 12)).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("drop"));
        assert!(e.message.ends_with("`drop` must be in 0..=11"), "{e}");
        assert!(a.configure(OptimizerSettings::sgd(0.1, 13)).is_ok());
    }
}
