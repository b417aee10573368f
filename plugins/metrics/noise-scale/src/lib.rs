//! Metric plugin `noise_scale`: the simple gradient noise scale `B_simple` of McCandlish,
//! Kaplan, Amodei et al., "An Empirical Model of Large-Batch Training" (arXiv 1812.06162).
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i`, with
//! `S = sum_i g_i` and `Q = sum_i |g_i|^2`:
//!
//! ```text
//! G         = S / m                                      (mean gradient)
//! tr(Sigma) = sum_i |g_i - G|^2 / (m - 1) = (Q - m |G|^2) / (m - 1)
//! B_simple  = tr(Sigma) / |G|^2
//! ```
//!
//! `Sigma` is the covariance of the per-example gradients (of the per-example losses `l_i`)
//! estimated **without bias**, dividing by `m - 1`; the paper's estimator from two batch sizes
//! targets the same population quantity. `B_simple` is the batch size at which the noise of a
//! mini-batch gradient is as large as the gradient itself. In terms of the m-coherence
//! `c = |S|^2 / Q` it is `m (m - c) / ((m - 1) c)`: 0 for identical gradients, `m` for
//! orthogonal gradients of equal norm. `tr(Sigma)` is clamped at 0 (it can only be negative by
//! rounding), and `B_simple` is left out when `G = 0`.
//!
//! Reports `noise_scale`, `noise_scale/<layer>` (with `per_layer`: `S` and `Q` restricted to
//! the layer), and for the whole network its two factors `noise_trace_cov` (`tr(Sigma)`) and
//! `noise_grad_sq` (`|G|^2`).
//!
//! Cost: one backward pass per chunk of the sample with per-example squared norms (for a
//! dense layer O(m (in + out)) on top of the pass), and O(P) memory: `S` accumulated in f64,
//! reused between measurements. A covariance needs two examples, so the sample has `m >= 2`
//! (default 1000).

use coherent_core::{
    CoherenceMetric, ConfigError, FromSums, Measurements, MetricEntry, PluginArgs, PluginConfig,
    Sampling, SumAndSqNorms, SumsMetric,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `noise_scale` metric: none of its own (the runner reads `every_steps`,
/// `sample`, `chunk` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct NoiseScaleConfig {}

/// The quantities of `S` and `Q`; the metric is `SumsMetric<NoiseScale>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoiseScale;

/// The metric: `S` and `Q` streamed over the sample, then [`NoiseScale`].
pub type NoiseScaleMetric = SumsMetric<NoiseScale>;

/// `(tr(Sigma), |G|^2)` from `|S|^2`, `Q` and `m >= 2`, with `tr(Sigma)` clamped at 0.
pub fn trace_and_mean_sq(s2: f64, q: f64, m: usize) -> (f64, f64) {
    let m = m as f64;
    let g2 = s2 / (m * m);
    (((q - m * g2) / (m - 1.0)).max(0.0), g2)
}

/// `B_simple = tr(Sigma) / |G|^2`; `None` when `G = 0` or `m < 2`.
pub fn noise_scale(s2: f64, q: f64, m: usize) -> Option<f64> {
    let (trace, g2) = trace_and_mean_sq(s2, q, m);
    (m >= 2 && g2 > 0.0).then(|| trace / g2)
}

impl FromSums for NoiseScale {
    fn finish(&self, sums: &SumAndSqNorms, out: &mut Measurements) {
        let m = sums.examples();
        if m < 2 {
            return;
        }
        let parts = sums.parts();
        let (_, s2, q) = parts[0];
        let (trace, g2) = trace_and_mean_sq(s2, q, m);
        out.push("noise_trace_cov", trace);
        out.push("noise_grad_sq", g2);
        for (layer, s2, q) in parts {
            if let Some(b) = noise_scale(s2, q, m) {
                out.push_at("noise_scale", layer, b);
            }
        }
    }
}

/// Builds the `noise_scale` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<NoiseScaleConfig, SumsMetric<NoiseScale>>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "noise_scale",
        description: "gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018; unbiased per-example covariance) of a fixed training sample, whole network and per layer.",
        params: NoiseScaleConfig::params,
        sampling: Sampling { min_sample: 2, ..Sampling::STREAMED },
        headline: &[],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::*;

    /// Measures explicit per-example gradients (`grads[i][layer]`) in chunks, twice (the second
    /// measurement reuses the state of the first).
    fn measure(grads: &Examples, chunk: usize) -> Measurements {
        measure_twice(&mut SumsMetric::new(NoiseScale), grads, chunk, &[])
    }

    /// Two-pass brute force: `(sum_i |g_i - G|^2 / (m - 1), |G|^2)`.
    fn reference(flat: &[Vec<f32>]) -> (f64, f64) {
        let m = flat.len() as f64;
        let mean: Vec<f64> = (0..flat[0].len())
            .map(|k| flat.iter().map(|g| g[k] as f64).sum::<f64>() / m)
            .collect();
        let trace = flat
            .iter()
            .map(|g| {
                g.iter()
                    .zip(&mean)
                    .map(|(v, mu)| (*v as f64 - mu).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (m - 1.0);
        (trace, mean.iter().map(|v| v * v).sum())
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol * want.abs(), "{got} vs {want}");
    }

    #[test]
    fn matches_the_two_pass_covariance_whole_network_and_per_layer() {
        let grads = random_examples(21, &[8, 5], 1, 0.5);
        let ms = measure(&grads, 4);
        for (suffix, vectors) in whole_and_layers(&grads) {
            let (trace, g2) = reference(&vectors);
            close(ms[&format!("noise_scale{suffix}")], trace / g2, 1e-5);
            if suffix.is_empty() {
                close(ms["noise_trace_cov"], trace, 1e-5);
                close(ms["noise_grad_sq"], g2, 1e-5);
            }
        }
    }

    #[test]
    fn chunking_and_scale_leave_b_simple_unchanged() {
        let grads = random_examples(17, &[6, 3], 2, 0.5);
        let want = measure(&grads, 17)["noise_scale"];
        close(measure(&grads, 1)["noise_scale"], want, 1e-6);
        close(measure(&grads, 5)["noise_scale"], want, 1e-6);
        let scaled = rescaled_examples(&grads, |_| 1e-3);
        close(measure(&scaled, 5)["noise_scale"], want, 1e-5);
    }

    #[test]
    fn identical_orthogonal_and_coherence_form() {
        let same = vec![vec![vec![0.5f32, -2.0, 1.0]]; 6];
        assert!(measure(&same, 4)["noise_scale"].abs() < 1e-9);
        let orthogonal = orthogonal_examples(&[2.0; 5]);
        close(measure(&orthogonal, 2)["noise_scale"], 5.0, 1e-9);
        let grads = random_examples(13, &[4], 3, 0.5);
        let (_, flat) = &whole_and_layers(&grads)[0];
        let s2: f64 = (0..4)
            .map(|k| flat.iter().map(|g| g[k] as f64).sum::<f64>().powi(2))
            .sum();
        let q: f64 = flat.iter().flatten().map(|v| (*v as f64).powi(2)).sum();
        let (m, c) = (13.0, s2 / q);
        let want = m * (m - c) / ((m - 1.0) * c);
        close(measure(&grads, 5)["noise_scale"], want, 1e-6);
    }

    #[test]
    fn zero_mean_gradient_has_no_noise_scale() {
        let opposite = vec![vec![vec![1.0f32, 2.0]], vec![vec![-1.0, -2.0]]];
        let ms = measure(&opposite, 1);
        assert!(ms
            .values()
            .iter()
            .all(|(n, _)| !n.starts_with("noise_scale")));
        close(ms["noise_trace_cov"], 10.0, 1e-9);
    }

    #[test]
    fn unknown_parameters_are_rejected() {
        assert!(build(&PluginArgs::from_toml("samples = 10").unwrap()).is_err());
        assert!(build(&PluginArgs::empty()).is_ok());
    }
}
