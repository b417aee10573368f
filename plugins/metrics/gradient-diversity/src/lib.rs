//! Metric plugin `gradient_diversity`: the gradient diversity of Yin et al., "Gradient
//! Diversity: a Key Ingredient for Scalable Distributed Learning" (AISTATS 2018, arXiv
//! 1706.05699), and the off-diagonal coherence of Chatterjee & Zielinski (arXiv 2008.01217).
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i`, with
//! `S = sum_i g_i` and `Q = sum_i |g_i|^2`:
//!
//! ```text
//! gradient_diversity = Q / |S|^2                       = 1 / m-coherence,  in [1/m, inf)
//! offdiag_coherence  = (|S|^2 - Q) / ((m - 1) Q)
//!                    = sum_{i != j} g_i . g_j / ((m - 1) sum_i |g_i|^2),   in [-1/(m-1), 1]
//! ```
//!
//! Identical gradients give diversity `1/m` and off-diagonal coherence 1; pairwise orthogonal
//! gradients give 1 and 0. The off-diagonal coherence is the m-coherence with the `v = v'`
//! terms removed, rescaled so that 0 means orthogonal examples whatever `m`. A value is left
//! out of the measurement when it is undefined (`|S| = 0` for the diversity, `Q = 0` for the
//! off-diagonal coherence).
//!
//! Per-layer values restrict `S` and `Q` to one layer: `gradient_diversity/<layer>`,
//! `offdiag_coherence/<layer>` (with `per_layer`).
//!
//! Cost: one backward pass per chunk of the sample with per-example squared norms (for a
//! dense layer `|g_i|^2 = |Delta_i|^2 (|A_i|^2 + 1)`, O(m (in + out)) on top of the pass), and
//! O(P) memory: `S` accumulated in f64 (8 bytes per parameter), reused between measurements.
//! The off-diagonal coherence needs a pair, so the sample has `m >= 2` (default 1000).

use coherent_core::{
    CoherenceMetric, ConfigError, FromSums, Measurements, MetricEntry, PluginArgs, PluginConfig,
    Sampling, SumAndSqNorms, SumsMetric,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `gradient_diversity` metric: none of its own (the runner reads
/// `every_steps`, `sample`, `chunk` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct GradientDiversityConfig {}

/// The quantities of `S` and `Q`; the metric is `SumsMetric<GradientDiversity>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradientDiversity;

/// The metric: `S` and `Q` streamed over the sample, then [`GradientDiversity`].
pub type GradientDiversityMetric = SumsMetric<GradientDiversity>;

/// Gradient diversity `Q / |S|^2`; `None` when `S = 0`.
pub fn diversity(s2: f64, q: f64) -> Option<f64> {
    (s2 > 0.0).then(|| q / s2)
}

/// Off-diagonal coherence `(|S|^2 - Q) / ((m - 1) Q)`; `None` when `Q = 0` or `m < 2`.
pub fn offdiag_coherence(s2: f64, q: f64, m: usize) -> Option<f64> {
    (q > 0.0 && m >= 2).then(|| (s2 - q) / ((m - 1) as f64 * q))
}

impl FromSums for GradientDiversity {
    fn finish(&self, sums: &SumAndSqNorms, out: &mut Measurements) {
        let m = sums.examples();
        for (layer, s2, q) in sums.parts() {
            if let Some(d) = diversity(s2, q) {
                out.push_at("gradient_diversity", layer, d);
            }
            if let Some(c) = offdiag_coherence(s2, q, m) {
                out.push_at("offdiag_coherence", layer, c);
            }
        }
    }
}

/// Builds the `gradient_diversity` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<GradientDiversityConfig, SumsMetric<GradientDiversity>>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "gradient_diversity",
        description: "gradient diversity Q / |S|^2 (Yin et al. 2018) and off-diagonal coherence (|S|^2 - Q) / ((m-1) Q) of a fixed training sample, whole network and per layer.",
        params: GradientDiversityConfig::params,
        sampling: Sampling { min_sample: 2, ..Sampling::STREAMED },
        headline: &[],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::*;

    /// Measures explicit per-example gradients (`grads[i][layer]`) in chunks, twice.
    fn measure(grads: &Examples, chunk: usize) -> Measurements {
        measure_twice(&mut SumsMetric::new(GradientDiversity), grads, chunk, &[])
    }

    /// Brute force over explicit vectors: `(Q / |S|^2, sum_{i != j} g_i . g_j / ((m-1) Q))`.
    fn reference(flat: &[Vec<f32>]) -> (f64, f64) {
        let m = flat.len();
        let s: Vec<f64> = (0..flat[0].len())
            .map(|k| flat.iter().map(|g| g[k] as f64).sum())
            .collect();
        let q: f64 = flat.iter().map(|g| dot(g, g)).sum();
        let mut off = 0.0;
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    off += dot(&flat[i], &flat[j]);
                }
            }
        }
        (
            q / s.iter().map(|v| v * v).sum::<f64>(),
            off / ((m - 1) as f64 * q),
        )
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol * want.abs().max(1e-3),
            "{got} vs {want}"
        );
    }

    #[test]
    fn matches_brute_force_whole_network_and_per_layer() {
        let grads = random_examples(19, &[7, 4], 1, 0.3);
        let ms = measure(&grads, 5);
        for (suffix, vectors) in whole_and_layers(&grads) {
            let (d, c) = reference(&vectors);
            close(ms[&format!("gradient_diversity{suffix}")], d, 1e-5);
            close(ms[&format!("offdiag_coherence{suffix}")], c, 1e-5);
        }
    }

    #[test]
    fn chunking_and_scale_do_not_change_the_values() {
        let grads = random_examples(23, &[9, 4], 2, 0.3);
        let base = measure(&grads, 23);
        let scaled = rescaled_examples(&grads, |_| 1e3);
        for other in [measure(&grads, 1), measure(&grads, 6), measure(&scaled, 4)] {
            assert_eq!(other.values().len(), base.values().len());
            for ((n, a), (n2, b)) in base.values().iter().zip(other.values()) {
                assert_eq!(n, n2);
                close(*b, *a, 1e-5);
            }
        }
    }

    #[test]
    fn identical_and_orthogonal_gradients() {
        let same = vec![vec![vec![0.5f32, -2.0, 1.0]]; 7];
        let ms = measure(&same, 3);
        close(ms["gradient_diversity"], 1.0 / 7.0, 1e-6);
        close(ms["offdiag_coherence"], 1.0, 1e-6);
        let ms = measure(&orthogonal_examples(&[1.0, 2.0, 3.0, 4.0, 5.0]), 2);
        close(ms["gradient_diversity"], 1.0, 1e-9);
        assert!(ms["offdiag_coherence"].abs() < 1e-9);
    }

    #[test]
    fn undefined_values_are_left_out() {
        let opposite = vec![vec![vec![1.0f32, 2.0]], vec![vec![-1.0, -2.0]]];
        let ms = measure(&opposite, 1);
        assert!(ms
            .values()
            .iter()
            .all(|(n, _)| !n.starts_with("gradient_diversity")));
        close(ms["offdiag_coherence"], -1.0, 1e-9);
        let zero = vec![vec![vec![0.0f32; 3]]; 4];
        assert!(measure(&zero, 2).is_empty());
    }

    #[test]
    fn unknown_parameters_are_rejected() {
        assert!(build(&PluginArgs::from_toml("samples = 10").unwrap()).is_err());
        assert!(build(&PluginArgs::empty()).is_ok());
    }
}
