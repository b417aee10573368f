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

use coherent_core::{
    check_sampling, inventory, Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest,
    LayerInfo, Measurement, MetricEntry, ParamDoc, PluginArgs, SumAndSqNorms,
};
use serde::Deserialize;

/// Parameters of the `gradient_diversity` metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradientDiversityConfig {
    /// Measure every this many steps.
    #[serde(default = "coherent_core::default_every_steps")]
    pub every_steps: usize,
    /// Size `m` of the fixed sample of training examples (at least 2).
    #[serde(default = "coherent_core::default_sample")]
    pub sample: usize,
    /// Also report per-layer values.
    #[serde(default = "coherent_core::default_per_layer")]
    pub per_layer: bool,
}

/// Streaming accumulator of `S` (f64) and `Q` per layer.
#[derive(Clone, Debug)]
pub struct GradientDiversityMetric {
    config: GradientDiversityConfig,
    sums: SumAndSqNorms,
}

/// Gradient diversity `Q / |S|^2`; `None` when `S = 0`.
pub fn diversity(s2: f64, q: f64) -> Option<f64> {
    (s2 > 0.0).then(|| q / s2)
}

/// Off-diagonal coherence `(|S|^2 - Q) / ((m - 1) Q)`; `None` when `Q = 0` or `m < 2`.
pub fn offdiag_coherence(s2: f64, q: f64, m: usize) -> Option<f64> {
    (q > 0.0 && m >= 2).then(|| (s2 - q) / ((m - 1) as f64 * q))
}

impl GradientDiversityMetric {
    /// A metric with `config`.
    pub fn new(config: GradientDiversityConfig) -> GradientDiversityMetric {
        GradientDiversityMetric {
            config,
            sums: SumAndSqNorms::default(),
        }
    }
}

impl CoherenceMetric for GradientDiversityMetric {
    fn needs(&self) -> GradRequest {
        SumAndSqNorms::NEEDS
    }

    fn sample_size(&self) -> usize {
        self.config.sample
    }

    fn every_steps(&self) -> usize {
        self.config.every_steps
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.sums.begin(layers);
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        self.sums.accumulate(chunk);
    }

    fn finish(&mut self) -> Vec<Measurement> {
        let (sums, m) = (self.sums.sums(), self.sums.examples());
        let mut out = Vec::new();
        let mut push = |suffix: &str, s2: f64, q: f64| {
            if let Some(d) = diversity(s2, q) {
                out.push((format!("gradient_diversity{suffix}"), d));
            }
            if let Some(c) = offdiag_coherence(s2, q, m) {
                out.push((format!("offdiag_coherence{suffix}"), c));
            }
        };
        push("", sums.s2, sums.q);
        if self.config.per_layer {
            for (name, (s2, q)) in self.sums.names().iter().zip(sums.layers) {
                push(&format!("/{name}"), s2, q);
            }
        }
        out
    }
}

/// Builds the `gradient_diversity` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    let config: GradientDiversityConfig = args.parse()?;
    let why = "a pair of examples";
    check_sampling(args, config.every_steps, config.sample, 2, why)?;
    Ok(Box::new(GradientDiversityMetric::new(config)))
}

inventory::submit! {
    MetricEntry {
        name: "gradient_diversity",
        description: "gradient diversity Q / |S|^2 (Yin et al. 2018) and off-diagonal coherence (|S|^2 - Q) / ((m-1) Q) of a fixed training sample, whole network and per layer.",
        params: &[
            ParamDoc { name: "every_steps", ty: "integer", default: "50", doc: "measure every N optimisation steps (and at the start and the end)" },
            ParamDoc { name: "sample", ty: "integer", default: "1000", doc: "size m >= 2 of the fixed sample of training examples" },
            ParamDoc { name: "per_layer", ty: "boolean", default: "true", doc: "also report gradient_diversity/<layer> and offdiag_coherence/<layer>" },
        ],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::{measure_examples, random_examples};

    type Grads = Vec<Vec<Vec<f32>>>;

    fn fresh(grads: &Grads, chunk: usize) -> Vec<Measurement> {
        let mut metric = GradientDiversityMetric::new(GradientDiversityConfig {
            every_steps: 1,
            sample: grads.len(),
            per_layer: true,
        });
        measure_examples(&mut metric, grads, chunk, &[])
    }

    fn get(ms: &[Measurement], name: &str) -> f64 {
        ms.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {ms:?}"))
            .1
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
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
        let ms = fresh(&grads, 5);
        let flat: Vec<Vec<f32>> = grads.iter().map(|g| g.concat()).collect();
        let (d, c) = reference(&flat);
        close(get(&ms, "gradient_diversity"), d, 1e-5);
        close(get(&ms, "offdiag_coherence"), c, 1e-5);
        for l in 0..2 {
            let layer: Vec<Vec<f32>> = grads.iter().map(|g| g[l].clone()).collect();
            let (d, c) = reference(&layer);
            close(get(&ms, &format!("gradient_diversity/l{l}")), d, 1e-5);
            close(get(&ms, &format!("offdiag_coherence/l{l}")), c, 1e-5);
        }
    }

    #[test]
    fn chunking_and_scale_do_not_change_the_values() {
        let grads = random_examples(23, &[9, 4], 2, 0.3);
        let base = fresh(&grads, 23);
        let scaled: Grads = grads
            .iter()
            .map(|g| {
                g.iter()
                    .map(|l| l.iter().map(|v| v * 1e3).collect())
                    .collect()
            })
            .collect();
        for other in [fresh(&grads, 1), fresh(&grads, 6), fresh(&scaled, 4)] {
            assert_eq!(other.len(), base.len());
            for ((n, a), (n2, b)) in base.iter().zip(&other) {
                assert_eq!(n, n2);
                close(*b, *a, 1e-5);
            }
        }
    }

    #[test]
    fn identical_and_orthogonal_gradients() {
        let same = vec![vec![vec![0.5f32, -2.0, 1.0]]; 7];
        let ms = fresh(&same, 3);
        close(get(&ms, "gradient_diversity"), 1.0 / 7.0, 1e-6);
        close(get(&ms, "offdiag_coherence"), 1.0, 1e-6);
        let orthogonal: Grads = (0..5)
            .map(|i| {
                let mut g = vec![0.0; 5];
                g[i] = (i + 1) as f32;
                vec![g]
            })
            .collect();
        let ms = fresh(&orthogonal, 2);
        close(get(&ms, "gradient_diversity"), 1.0, 1e-9);
        assert!(get(&ms, "offdiag_coherence").abs() < 1e-9);
    }

    #[test]
    fn undefined_values_are_left_out() {
        let opposite = vec![vec![vec![1.0f32, 2.0]], vec![vec![-1.0, -2.0]]];
        let ms = fresh(&opposite, 1);
        assert!(ms.iter().all(|(n, _)| !n.starts_with("gradient_diversity")));
        close(get(&ms, "offdiag_coherence"), -1.0, 1e-9);
        let zero = vec![vec![vec![0.0f32; 3]]; 4];
        assert!(fresh(&zero, 2).is_empty());
    }

    #[test]
    fn measurements_reuse_state_without_leaking_between_them() {
        let grads = random_examples(9, &[5, 3], 3, 0.3);
        let once = fresh(&grads, 4);
        let mut metric = GradientDiversityMetric::new(GradientDiversityConfig {
            every_steps: 1,
            sample: 9,
            per_layer: false,
        });
        for _ in 0..2 {
            let again = measure_examples(&mut metric, &grads, 4, &[]);
            assert_eq!(again.len(), 2);
            close(
                get(&again, "gradient_diversity"),
                get(&once, "gradient_diversity"),
                1e-12,
            );
        }
    }

    #[test]
    fn bad_parameters_are_located() {
        for (text, bad) in [("every_steps = 0", "0"), ("sample = 1", "1")] {
            let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
            assert_eq!(&text[err.span.unwrap()], bad);
        }
        assert!(build(&PluginArgs::from_toml("samples = 10").unwrap()).is_err());
        assert!(build(&PluginArgs::empty()).is_ok());
    }
}
