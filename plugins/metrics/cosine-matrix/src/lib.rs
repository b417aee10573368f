//! Metric plugin `cosine_matrix`: the mean of the pairwise cosine matrix of per-example
//! gradients, in O(m) instead of O(m^2) (the cosine counterpart of the m-coherence of
//! Chatterjee & Zielinski, arXiv 2008.01217; the all-pairs mean cosine of the stiffness of Fort
//! et al., arXiv 1901.09491).
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i`, let `Z` be the
//! examples whose gradient is nonzero and `n = |Z|`. With the normalised sum
//! `U = sum_{i in Z} g_i / |g_i|`:
//!
//! ```text
//! mean_pairwise_cos = mean over pairs i != j of Z of cos(g_i, g_j)
//!                   = (|U|^2 - n) / (n (n - 1))
//! ```
//!
//! because `|U|^2 = sum_{i,j in Z} cos(g_i, g_j)` and the `n` diagonal terms are 1. Examples
//! with a zero gradient have no cosine and are **excluded** (they do not count in `n`); the
//! value is left out when `n < 2`. Per layer (`mean_pairwise_cos/<layer>`, with `per_layer`)
//! every example is normalised by its own gradient norm **in that layer**, so each layer's value
//! is the mean cosine of that layer's gradients, and `Z` is the examples with a nonzero
//! gradient in that layer.
//!
//! Cost: the normalisation needs each `g_i` itself, so the model materialises per-example
//! gradients chunk by chunk (`per_example`; for a dense layer the outer products
//! `Delta_i A_i^T`, O(chunk P) work and memory per chunk) and the plugin asks for small chunks
//! (`chunk`, default 32) to bound that `chunk x P` matrix. The accumulation is O(m P) and the
//! plugin's memory O(P): `U` for the whole network and one per layer, in f64, reused between
//! measurements. A pair needs two examples, so the sample has `m >= 2` (default 1000).

use coherent_core::{
    zero_per_layer, Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest, LayerInfo,
    Measurements, MetricEntry, PluginArgs, PluginConfig, Sampling,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `cosine_matrix` metric: none of its own (the runner reads `every_steps`,
/// `sample`, `chunk` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct CosineMatrixConfig {}

/// Streaming accumulator of the normalised sums.
#[derive(Clone, Debug, Default)]
pub struct CosineMatrixMetric {
    names: Vec<String>,
    /// `sum_i g_i,l / |g_i|` per layer (whole-network normalisation).
    whole: Vec<Vec<f64>>,
    /// `sum_i g_i,l / |g_i,l|` per layer (per-layer normalisation).
    layer: Vec<Vec<f64>>,
    /// Examples with a nonzero gradient: the whole network, then per layer.
    counted: usize,
    layer_counted: Vec<usize>,
    /// `|g_i,l|^2` of the current example, per layer.
    norms: Vec<f64>,
}

/// Mean pairwise cosine `(|U|^2 - n) / (n (n - 1))`; `None` when `n < 2`.
pub fn mean_pairwise_cos(u2: f64, n: usize) -> Option<f64> {
    let nf = n as f64;
    (n >= 2).then(|| ((u2 - nf) / (nf * (nf - 1.0))).clamp(-1.0, 1.0))
}

fn sq_norm(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum()
}

impl CoherenceMetric for CosineMatrixMetric {
    fn needs(&self) -> GradRequest {
        GradRequest::PER_EXAMPLE
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        zero_per_layer(&mut self.whole, layers);
        zero_per_layer(&mut self.layer, layers);
        self.counted = 0;
        self.layer_counted.clear();
        self.layer_counted.resize(layers.len(), 0);
        self.norms.resize(layers.len(), 0.0);
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        for i in 0..chunk.batch_size {
            let row = |l: usize| {
                let rows = &chunk.per_example[l];
                let p = rows.len() / chunk.batch_size;
                &rows[i * p..(i + 1) * p]
            };
            for l in 0..self.norms.len() {
                self.norms[l] = sq_norm(row(l));
            }
            let total: f64 = self.norms.iter().sum();
            let inv = if total > 0.0 { 1.0 / total.sqrt() } else { 0.0 };
            self.counted += usize::from(total > 0.0);
            // A layer whose gradient is zero adds nothing to either sum.
            for l in (0..self.norms.len()).filter(|&l| self.norms[l] > 0.0) {
                let inv_l = 1.0 / self.norms[l].sqrt();
                self.layer_counted[l] += 1;
                let (w, v) = (&mut self.whole[l], &mut self.layer[l]);
                for ((w, v), x) in w.iter_mut().zip(v.iter_mut()).zip(row(l)) {
                    let x = *x as f64;
                    *w += x * inv;
                    *v += x * inv_l;
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Measurements) {
        let u2: f64 = self.whole.iter().flatten().map(|v| v * v).sum();
        if let Some(c) = mean_pairwise_cos(u2, self.counted) {
            out.push("mean_pairwise_cos", c);
        }
        for ((name, u), n) in self.names.iter().zip(&self.layer).zip(&self.layer_counted) {
            let u2: f64 = u.iter().map(|v| v * v).sum();
            if let Some(c) = mean_pairwise_cos(u2, *n) {
                out.push_layer("mean_pairwise_cos", name, c);
            }
        }
    }
}

/// Builds the `cosine_matrix` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<CosineMatrixConfig, CosineMatrixMetric>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "cosine_matrix",
        description: "mean pairwise cosine of per-example gradients (|sum_i g_i/|g_i||^2 - m) / (m (m-1)) in O(m), zero gradients excluded, whole network and per layer.",
        params: CosineMatrixConfig::params,
        // small chunks: the model materialises chunk x P per-example values
        sampling: Sampling { sample: 1000, min_sample: 2, chunk: Some(32) },
        headline: &[],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::*;

    fn fresh(grads: &Examples, chunk: usize) -> Measurements {
        measure_examples(&mut CosineMatrixMetric::default(), grads, chunk, &[])
    }

    /// Brute force: the mean of `cos(g_i, g_j)` over ordered pairs `i != j` of nonzero vectors.
    fn reference(flat: &[Vec<f32>]) -> f64 {
        let (mut sum, mut pairs) = (0.0, 0);
        for i in 0..flat.len() {
            for j in 0..flat.len() {
                let norms = (dot(&flat[i], &flat[i]) * dot(&flat[j], &flat[j])).sqrt();
                if i != j && norms > 0.0 {
                    sum += dot(&flat[i], &flat[j]) / norms;
                    pairs += 1;
                }
            }
        }
        sum / pairs as f64
    }

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn matches_brute_force_pairwise_cosines_for_any_chunking() {
        let grads = random_examples(19, &[7, 3, 5], 1, 0.3);
        for chunk in [1, 4, 19, 32] {
            let ms = fresh(&grads, chunk);
            for (suffix, vectors) in whole_and_layers(&grads) {
                close(
                    ms[&format!("mean_pairwise_cos{suffix}")],
                    reference(&vectors),
                );
            }
        }
    }

    #[test]
    fn zero_gradients_are_excluded_per_network_and_per_layer() {
        let mut grads = random_examples(9, &[4, 6], 2, 0.3);
        grads[3][1] = vec![0.0; 6]; // zero in layer 1 only
        grads.push(vec![vec![0.0; 4], vec![0.0; 6]]); // zero everywhere
        let ms = fresh(&grads, 4);
        for (suffix, vectors) in whole_and_layers(&grads) {
            close(
                ms[&format!("mean_pairwise_cos{suffix}")],
                reference(&vectors),
            );
        }
        let without: Examples = grads[..9].to_vec();
        close(
            ms["mean_pairwise_cos"],
            fresh(&without, 2)["mean_pairwise_cos"],
        );
    }

    #[test]
    fn rescaling_examples_changes_nothing_identical_and_orthogonal() {
        let grads = random_examples(11, &[5], 3, 0.3);
        let rescaled = rescaled_examples(&grads, |i| (i as f32 + 0.5) * 10.0);
        close(
            fresh(&rescaled, 3)["mean_pairwise_cos"],
            fresh(&grads, 5)["mean_pairwise_cos"],
        );
        let same = vec![vec![vec![0.5f32, -2.0], vec![1.0]]; 6];
        close(fresh(&same, 4)["mean_pairwise_cos"], 1.0);
        let orthogonal = orthogonal_examples(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        close(fresh(&orthogonal, 2)["mean_pairwise_cos"], 0.0);
    }

    #[test]
    fn measurements_reuse_state_without_leaking_between_them() {
        let grads = random_examples(7, &[3, 2], 4, 0.3);
        measure_twice(&mut CosineMatrixMetric::default(), &grads, 3, &[]);
    }

    #[test]
    fn per_example_gradients_and_no_parameters() {
        let metric = build(&PluginArgs::empty()).unwrap();
        assert!(metric.needs().per_example);
        assert!(build(&PluginArgs::from_toml("chunks = 8").unwrap()).is_err());
    }
}
