//! Aggregator plugin `winsorized`: winsorized gradient descent (Chatterjee, "Coherent
//! Gradients", ICLR 2020, arXiv 2002.10657).
//!
//! For every parameter coordinate separately, each example's value is clipped to the `c`-th
//! and `(100 - c)`-th percentiles of that coordinate's values across the batch, and the
//! clipped values are averaged (the loss is the batch mean, so `c = 0` is exactly SGD).
//! Percentiles use NumPy's `nearest` method, as the authors' code does: over a batch of 100,
//! `c` is about the number of extreme values clipped on each side. `clip_count = k` clips
//! exactly `k` values per side instead. Weak gradient directions, supported by few examples,
//! are suppressed, and with them the memorisation of corrupt labels.

use coherent_core::{
    AggregatorEntry, ConfigError, GradRequest, GradientAggregator, Gradients, OptimizerSettings,
    PluginArgs, PluginConfig, Refusal,
};
use coherent_robust::{nearest_rank, winsorize_all};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `winsorized`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct WinsorizedConfig {
    /// Percentile clipped at each end (NumPy's 'nearest' method; over a batch of 100, the
    /// number of values clipped per side).
    #[serde(default)]
    #[param(ty = "float in [0, 50)", default = "required (or clip_count)")]
    pub c: Option<f64>,
    /// Clip exactly this many values at each end instead of c.
    #[serde(default)]
    #[param(ty = "integer in 0..=(batch_size - 1) / 2")]
    pub clip_count: Option<usize>,
}

/// Winsorized mean of the per-example gradients.
#[derive(Clone, Debug)]
pub struct WinsorizedAggregator {
    config: WinsorizedConfig,
}

impl WinsorizedAggregator {
    /// Order-statistic indices `(lo, hi from the top)` for a batch of `n`.
    pub fn ranks(&self, n: usize) -> (usize, usize) {
        match (self.config.clip_count, self.config.c) {
            (Some(k), _) => (k, k),
            (None, Some(c)) => (nearest_rank(c, n), n - 1 - nearest_rank(100.0 - c, n)),
            (None, None) => (0, 0),
        }
    }

    /// Whether nothing is ever clipped (`c = 0` or `clip_count = 0`): plain SGD, which needs
    /// no per-example gradients.
    fn clips_nothing(&self) -> bool {
        self.config.clip_count == Some(0) || self.config.c == Some(0.0)
    }
}

impl GradientAggregator for WinsorizedAggregator {
    fn needs(&self) -> GradRequest {
        if self.clips_nothing() {
            GradRequest::SUM
        } else {
            GradRequest::BLOCKS
        }
    }

    /// Refuses a `clip_count` that would clip a coordinate of the run's smallest batch from both
    /// ends past its middle (`c`, a percentile, fits any batch).
    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, Refusal> {
        let max = settings.smallest_batch.saturating_sub(1) / 2;
        let Some(k) = self.config.clip_count else {
            return Ok(settings);
        };
        let problem = |batch| {
            format!("clipping {k} values at each end of a coordinate crosses the middle of {batch}")
        };
        let help = "lower `clip_count`, give a percentile `c` instead, or raise `batch_size` in [training]";
        settings.check_batch_bound("clip_count", k, 0..=max, problem, help)
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        if self.clips_nothing() {
            return g.batch.mean_into(direction);
        }
        let src = g.blocks();
        let (lo, hi) = self.ranks(g.batch_size());
        winsorize_all(src, direction, lo, hi);
    }
}

/// Builds the `winsorized` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let config: WinsorizedConfig = args.parse()?;
    match (config.c, config.clip_count) {
        (Some(_), Some(_)) => {
            return Err(args.invalid("clip_count", "give either `c` or `clip_count`, not both"))
        }
        (None, None) => {
            return Err(args.invalid("c", "give `c` (percentile, e.g. 2) or `clip_count`"))
        }
        (Some(c), None) if !(0.0..50.0).contains(&c) => {
            return Err(args.invalid("c", format!("must be a percentile in [0, 50), got {c}")))
        }
        _ => {}
    }
    Ok(Box::new(WinsorizedAggregator { config }))
}

coherent_core::register! {
    AggregatorEntry {
        name: "winsorized",
        description: "Winsorized gradient descent (Chatterjee 2020): clip each coordinate to its c-th/(100-c)-th percentile across the batch, then average.",
        params: WinsorizedConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::aggregate_examples;

    fn grads(b: usize, sizes: &[usize], seed: u64) -> Vec<Vec<Vec<f32>>> {
        coherent_core::random_examples(b, sizes, seed, 0.0)
    }

    fn run(args: &str, g: &[Vec<Vec<f32>>]) -> Vec<Vec<f32>> {
        let mut a = build(&PluginArgs::from_toml(args).unwrap()).unwrap();
        aggregate_examples(a.as_mut(), g, 0)
    }

    /// Brute force: sort each coordinate, clip to the percentile values, average.
    fn brute(g: &[Vec<Vec<f32>>], lo: usize, hi_from_top: usize) -> Vec<Vec<f32>> {
        let n = g.len();
        (0..g[0].len())
            .map(|l| {
                (0..g[0][l].len())
                    .map(|c| {
                        let mut v: Vec<f32> = g.iter().map(|e| e[l][c]).collect();
                        v.sort_by(f32::total_cmp);
                        let (a, b) = (v[lo], v[n - 1 - hi_from_top]);
                        v.iter().map(|x| x.clamp(a, b)).sum::<f32>() / n as f32
                    })
                    .collect()
            })
            .collect()
    }

    fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn matches_brute_force_for_the_papers_values_of_c() {
        let g = grads(100, &[300, 7], 1);
        for (c, k) in [(0.0, 0), (1.0, 1), (2.0, 2), (4.0, 4), (8.0, 8)] {
            close(&run(&format!("c = {c}"), &g), &brute(&g, k, k));
        }
        close(&run("clip_count = 3", &g), &brute(&g, 3, 3));
    }

    #[test]
    fn zero_clipping_is_sgd_and_odd_batches_work() {
        let g = grads(13, &[50], 2);
        let mean: Vec<f32> = (0..50)
            .map(|c| g.iter().map(|e| e[0][c]).sum::<f32>() / 13.0)
            .collect();
        close(&run("c = 0", &g), &[mean]);
        for (args, blocks) in [("c = 0", false), ("clip_count = 0", false), ("c = 1", true)] {
            let a = build(&PluginArgs::from_toml(args).unwrap()).unwrap();
            assert_eq!(a.needs().blocks, blocks, "{args}");
        }
        // 13 values: 10% -> index round(1.2) = 1, 90% -> round(10.8) = 11 = 13 - 1 - 1
        close(&run("c = 10", &g), &brute(&g, 1, 1));
    }

    #[test]
    fn parameters_are_validated() {
        for bad in ["", "c = 50", "c = 2\nclip_count = 2", "c = -1"] {
            assert!(
                build(&PluginArgs::from_toml(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
