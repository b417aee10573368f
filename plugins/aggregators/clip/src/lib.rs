//! Aggregator plugin `clip`: per-example gradient norm clipping, `g_i min(1, C / |g_i|)`,
//! averaged over the batch, with optional Gaussian noise of standard deviation
//! `noise_multiplier * C / batch` per coordinate: DP-SGD (Abadi et al. 2016). The norm is that
//! of each example's whole-network gradient.

use coherent_core::{
    AggregatorEntry, AggregatorState, ConfigError, GradRequest, GradientAggregator, Gradients,
    PluginArgs, PluginConfig, Rng,
};
use coherent_robust::weighted_sum_all;
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `clip`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    /// Clipping norm C of each example's whole gradient.
    #[param(ty = "float > 0")]
    pub max_norm: f64,
    /// Gaussian noise of std noise_multiplier * C / batch per coordinate (DP-SGD; 0: no noise).
    #[serde(default)]
    #[param(ty = "float >= 0")]
    pub noise_multiplier: f64,
    /// Seed of the noise.
    #[serde(default)]
    pub noise_seed: u64,
}

/// Norm clipping (and DP-SGD noise).
#[derive(Clone, Debug)]
pub struct ClipAggregator {
    config: ClipConfig,
    rng: Rng,
    scales: Vec<f32>,
}

impl GradientAggregator for ClipAggregator {
    fn state(&self) -> AggregatorState {
        AggregatorState {
            numbers: vec![self.rng.state()],
            vectors: vec![],
        }
    }

    fn restore(&mut self, state: AggregatorState) -> Result<(), String> {
        match state.numbers[..] {
            [rng] if state.vectors.is_empty() => {
                self.rng = Rng::from_state(rng);
                Ok(())
            }
            _ => Err("the checkpoint's `clip` state is not a noise generator state".into()),
        }
    }

    fn needs(&self) -> GradRequest {
        GradRequest {
            sq_norms: true,
            blocks: true,
            ..GradRequest::SUM
        }
    }

    fn aggregate(&mut self, g: &Gradients<'_>, direction: &mut [Vec<f32>]) {
        let b = g.batch_size();
        let c = self.config.max_norm;
        self.scales.clear();
        self.scales.extend((0..b).map(|i| {
            let norm = g.batch.example_sq_norm(i).sqrt();
            (if norm > c { c / norm } else { 1.0 } / b as f64) as f32
        }));
        weighted_sum_all(g.blocks(), direction, &self.scales);
        let sigma = self.config.noise_multiplier * c / b as f64;
        if sigma > 0.0 {
            for x in direction.iter_mut().flatten() {
                *x += (sigma * self.rng.normal()) as f32;
            }
        }
    }
}

/// Builds the `clip` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let config: ClipConfig = args.parse()?;
    if !(config.max_norm.is_finite() && config.max_norm > 0.0) {
        return Err(args.invalid(
            "max_norm",
            format!("must be a positive number, got {}", config.max_norm),
        ));
    }
    if !(config.noise_multiplier.is_finite() && config.noise_multiplier >= 0.0) {
        return Err(args.invalid("noise_multiplier", "must be >= 0"));
    }
    let rng = Rng::derived(config.noise_seed, "dp-noise");
    Ok(Box::new(ClipAggregator {
        config,
        rng,
        scales: Vec::new(),
    }))
}

coherent_core::register! {
    AggregatorEntry {
        name: "clip",
        description: "Per-example norm clipping g_i min(1, C/|g_i|), averaged; with noise_multiplier > 0, DP-SGD.",
        params: ClipConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::aggregate_examples;

    fn examples() -> Vec<Vec<Vec<f32>>> {
        let mut r = coherent_core::Rng::new(6);
        (0..6)
            .map(|i| {
                let scale = (i + 1) as f32;
                vec![
                    (0..20).map(|_| r.normal() as f32 * scale).collect(),
                    vec![1.0; 3],
                ]
            })
            .collect()
    }

    #[test]
    fn clipping_matches_brute_force() {
        let g = examples();
        let mut a = build(&PluginArgs::from_toml("max_norm = 5.0").unwrap()).unwrap();
        let dir = aggregate_examples(a.as_mut(), &g, 0);
        let scale: Vec<f32> = g
            .iter()
            .map(|e| {
                let n = e.iter().flatten().map(|v| v * v).sum::<f32>().sqrt();
                (5.0 / n).min(1.0) / 6.0
            })
            .collect();
        for l in 0..2 {
            for c in 0..dir[l].len() {
                let want: f32 = g.iter().zip(&scale).map(|(e, s)| e[l][c] * s).sum();
                assert!((dir[l][c] - want).abs() < 1e-5);
            }
        }
        assert!(
            scale.iter().any(|s| *s < 1.0 / 6.0 - 1e-6),
            "some examples are clipped"
        );
    }

    #[test]
    fn noise_has_the_dp_sgd_scale() {
        let g = examples();
        let mut plain = build(&PluginArgs::from_toml("max_norm = 5.0").unwrap()).unwrap();
        let mut noisy =
            build(&PluginArgs::from_toml("max_norm = 5.0\nnoise_multiplier = 2.0").unwrap())
                .unwrap();
        let (a, b) = (
            aggregate_examples(plain.as_mut(), &g, 0),
            aggregate_examples(noisy.as_mut(), &g, 0),
        );
        let diffs: Vec<f64> = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (y - x) as f64)
            .collect();
        let var = diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64;
        let want = (2.0 * 5.0 / 6.0f64).powi(2);
        assert!(var > 0.3 * want && var < 3.0 * want, "{var} vs {want}");
        assert!(build(&PluginArgs::from_toml("max_norm = 0.0").unwrap()).is_err());
    }
}
