//! Aggregator plugin `geometric_median`: the point minimising the sum of Euclidean distances
//! to the per-example gradients of the batch (whole network), by Weiszfeld's iteration
//! `z <- sum_i w_i g_i / sum_i w_i`, `w_i = 1 / max(|g_i - z|, eps)`, started from the mean
//! (Pillutla, Kakade & Harchaoui 2022, "Robust aggregation for federated learning"). Unlike
//! coordinate-wise rules it is rotation invariant. Each iteration streams the per-example
//! gradients twice, block by block: once for the distances, once for the weighted mean.

use coherent_core::{
    AggregatorEntry, ConfigError, GradRequest, GradientAggregator, Gradients, PerExampleBlocks,
    PluginArgs, PluginConfig,
};
use coherent_robust::{coordinatewise, BLOCK};
use rayon::prelude::*;
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `geometric_median`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct GeometricMedianConfig {
    /// Weiszfeld iterations.
    #[serde(default = "default_iterations")]
    #[param(ty = "integer in 1..=1000")]
    pub iterations: usize,
    /// Smallest distance used in a weight (avoids dividing by zero at a data point).
    #[serde(default = "default_eps")]
    #[param(ty = "float > 0")]
    pub eps: f64,
}

/// The most Weiszfeld iterations of a step (a few converge; more only slow every step).
pub const MAX_ITERATIONS: usize = 1000;

fn default_iterations() -> usize {
    8
}
fn default_eps() -> f64 {
    1e-6
}

/// Weiszfeld's geometric median.
#[derive(Clone, Debug)]
pub struct GeometricMedianAggregator {
    config: GeometricMedianConfig,
}

/// Blocks whose distances one task adds up in order: the tasks are the same on any number of
/// threads, so the sums are too.
const BLOCKS_PER_TASK: usize = 16;

/// `|g_i - z|^2` for every example, streamed over the blocks: each task's blocks summed in
/// order, then the tasks' sums in order, the same numbers on any number of threads.
fn sq_distances(src: &dyn PerExampleBlocks, z: &[Vec<f32>]) -> Vec<f64> {
    let b = src.batch();
    let mut total = vec![0.0f64; b];
    for (layer, zl) in z.iter().enumerate() {
        let parts: Vec<Vec<f64>> = zl
            .par_chunks(BLOCKS_PER_TASK * BLOCK)
            .enumerate()
            .map_init(Vec::new, |rows, (task, zt)| {
                let mut acc = vec![0.0f64; b];
                for (k, zc) in zt.chunks(BLOCK).enumerate() {
                    let start = (task * BLOCKS_PER_TASK + k) * BLOCK;
                    rows.resize(b * zc.len(), 0.0f32);
                    src.block_rows(layer, start..start + zc.len(), rows);
                    for (a, row) in acc.iter_mut().zip(rows.chunks_exact(zc.len())) {
                        *a += row
                            .iter()
                            .zip(zc)
                            .map(|(g, z)| ((g - z) as f64).powi(2))
                            .sum::<f64>();
                    }
                }
                acc
            })
            .collect();
        for part in &parts {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
    }
    total
}

impl GradientAggregator for GeometricMedianAggregator {
    fn needs(&self) -> GradRequest {
        GradRequest::BLOCKS
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        let src = g.blocks();
        g.batch.mean_into(direction);
        for _ in 0..self.config.iterations {
            let weights: Vec<f64> = sq_distances(src, direction)
                .iter()
                .map(|d| 1.0 / d.sqrt().max(self.config.eps))
                .collect();
            let total: f64 = weights.iter().sum();
            let w: Vec<f32> = weights.iter().map(|w| (w / total) as f32).collect();
            coordinatewise(src, direction, |v| {
                v.iter().zip(&w).map(|(g, w)| g * w).sum()
            });
        }
    }
}

/// Builds the `geometric_median` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let config: GeometricMedianConfig = args.parse()?;
    if !(1..=MAX_ITERATIONS).contains(&config.iterations) {
        let message = format!(
            "must be in 1..={MAX_ITERATIONS}, got {} (each iteration reads every per-example gradient of the batch twice)",
            config.iterations
        );
        return Err(args.invalid("iterations", message));
    }
    if !(config.eps.is_finite() && config.eps > 0.0) {
        return Err(args.invalid("eps", "must be a positive number"));
    }
    Ok(Box::new(GeometricMedianAggregator { config }))
}

coherent_core::register! {
    AggregatorEntry {
        name: "geometric_median",
        description: "Geometric median of the per-example gradients (Weiszfeld iterations from the mean).",
        params: GeometricMedianConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::{aggregate_examples, ExplicitBlocks};

    /// Weiszfeld by hand on flat vectors, in f64.
    fn brute(g: &[Vec<f64>], iterations: usize) -> Vec<f64> {
        let p = g[0].len();
        let mut z: Vec<f64> = (0..p)
            .map(|c| g.iter().map(|x| x[c]).sum::<f64>() / g.len() as f64)
            .collect();
        for _ in 0..iterations {
            let w: Vec<f64> = g
                .iter()
                .map(|x| {
                    1.0 / x
                        .iter()
                        .zip(&z)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                        .sqrt()
                        .max(1e-6)
                })
                .collect();
            let t: f64 = w.iter().sum();
            z = (0..p)
                .map(|c| g.iter().zip(&w).map(|(x, w)| x[c] * w).sum::<f64>() / t)
                .collect();
        }
        z
    }

    #[test]
    fn matches_weiszfeld_by_hand_and_resists_an_outlier() {
        let mut r = coherent_core::Rng::new(11);
        let mut g: Vec<Vec<Vec<f32>>> = (0..9)
            .map(|_| {
                vec![
                    (0..300).map(|_| r.normal() as f32).collect(),
                    (0..4).map(|_| r.normal() as f32).collect(),
                ]
            })
            .collect();
        g[0][0].iter_mut().for_each(|v| *v += 100.0); // one example far away
        let flat: Vec<Vec<f64>> = g
            .iter()
            .map(|e| e.concat().iter().map(|&v| v as f64).collect())
            .collect();
        let want = brute(&flat, 8);
        let mut a = build(&PluginArgs::empty()).unwrap();
        let dir = aggregate_examples(a.as_mut(), &g, 0);
        for (x, y) in dir.concat().iter().zip(&want) {
            assert!((*x as f64 - y).abs() < 1e-3, "{x} vs {y}");
        }
        // the outlier drags the mean by 100/9 per coordinate but the median hardly at all
        let shift: f32 = dir[0].iter().sum::<f32>() / 300.0;
        assert!(shift.abs() < 2.0, "{shift}");
        assert!(build(&PluginArgs::from_toml("iterations = 0").unwrap()).is_err());
    }

    /// `f` on a pool of `threads` threads.
    fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(f)
    }

    #[test]
    fn distances_are_the_same_numbers_on_any_number_of_threads() {
        let mut r = coherent_core::Rng::new(5);
        // many blocks per layer and values of many magnitudes, so that sums taken in another
        // order would round differently
        let mut value = || (r.normal() * (4.0 * r.normal()).exp()) as f32;
        let sizes = [40 * BLOCK + 17, 3 * BLOCK];
        let grads: Vec<Vec<Vec<f32>>> = (0..24)
            .map(|_| {
                sizes
                    .iter()
                    .map(|&n| (0..n).map(|_| value()).collect())
                    .collect()
            })
            .collect();
        let z: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| (0..n).map(|_| value()).collect())
            .collect();
        let src = ExplicitBlocks { grads };
        let want = on_threads(1, || sq_distances(&src, &z));
        for threads in [2, 3, 7] {
            for _ in 0..3 {
                let got = on_threads(threads, || sq_distances(&src, &z));
                assert!(got == want, "{threads} threads: {got:?} vs {want:?}");
            }
        }
    }
}
