//! Metric plugin `gradient_confusion`: the gradient confusion of Sankararaman, De, Xu, Huang
//! and Goldstein, "The Impact of Neural Network Overparameterization on Gradient Confusion and
//! Stochastic Gradient Descent" (ICML 2020, arXiv 1904.06963).
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i`:
//!
//! ```text
//! gradient_confusion_min_dot = min over pairs i != j of g_i . g_j
//! gradient_confusion_min_cos = min over pairs i != j of g_i . g_j / (|g_i| |g_j|)
//! ```
//!
//! The paper's confusion bound `eta` (the smallest `eta >= 0` with `g_i . g_j >= -eta` for
//! all `i != j`) is `max(0, -gradient_confusion_min_dot)`; the cosine is its scale-free
//! version. A pair in which either gradient is zero has inner product 0 and counts for the
//! minimum inner product, but has no cosine and is left out of the minimum cosine; a minimum
//! without pairs is left out of the measurement.
//!
//! Reports both for the whole network and, with `per_layer`, from each layer's gradients as
//! `<quantity>/<layer>`.
//!
//! Cost: the inner products come from the `m x m` Gram matrix of each layer, computed by the
//! model from one backward pass (for a dense layer O(m^2 (in + out))), so the plugin asks for
//! the whole sample (`m >= 2`, default 500) as **one chunk**: memory O(L m^2) for the model's
//! per-layer Grams plus O(m^2) for the whole-network Gram (f64, reused between measurements),
//! and the forward pass of `m` examples at once; the pair loop is O(L m^2). If a runner passes
//! several chunks anyway, only pairs within a chunk are seen.

use coherent_core::{
    Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest, LayerInfo, Measurements,
    MetricEntry, PerLayer, PluginArgs, PluginConfig, Sampling,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `gradient_confusion` metric: none of its own (the runner reads
/// `every_steps`, `sample` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct GradientConfusionConfig {}

/// Minimum inner product and cosine over the pairs seen so far (`+inf`: none yet).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Minima {
    /// Minimum of `g_i . g_j`.
    pub dot: f64,
    /// Minimum of `cos(g_i, g_j)` over pairs of nonzero gradients.
    pub cos: f64,
}

impl Default for Minima {
    fn default() -> Minima {
        Minima {
            dot: f64::INFINITY,
            cos: f64::INFINITY,
        }
    }
}

impl Minima {
    /// Takes in every pair `i < j` of the row-major `n x n` Gram matrix `gram`.
    pub fn add_pairs<T: Copy + Into<f64>>(&mut self, gram: &[T], n: usize) {
        let at = |i: usize, j: usize| -> f64 { gram[i * n + j].into() };
        for i in 0..n {
            let ni = at(i, i);
            for j in i + 1..n {
                let (dot, nj) = (at(i, j), at(j, j));
                self.dot = self.dot.min(dot);
                if ni > 0.0 && nj > 0.0 {
                    self.cos = self.cos.min((dot / (ni * nj).sqrt()).clamp(-1.0, 1.0));
                }
            }
        }
    }

    /// Writes both minima, of the whole network (`layer` = `None`) or of one layer; a minimum
    /// without pairs is left out.
    fn push(&self, out: &mut Measurements, layer: Option<&str>) {
        for (name, v) in [("dot", self.dot), ("cos", self.cos)] {
            if v.is_finite() {
                out.push_at(&format!("gradient_confusion_min_{name}"), layer, v);
            }
        }
    }
}

/// Minima of the whole network and of each layer.
#[derive(Clone, Debug, Default)]
pub struct GradientConfusionMetric {
    /// The whole-network Gram of the current chunk (sum of the layers' Grams).
    gram: Vec<f64>,
    minima: PerLayer<Minima>,
}

impl CoherenceMetric for GradientConfusionMetric {
    fn needs(&self) -> GradRequest {
        GradRequest::GRAM
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.minima.begin(layers);
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        let n = chunk.batch_size;
        chunk.whole_gram_into(&mut self.gram);
        self.minima.whole.add_pairs(&self.gram, n);
        for (minima, layer) in self.minima.layers.iter_mut().zip(&chunk.gram) {
            minima.add_pairs(layer, n);
        }
    }

    fn finish(&mut self, out: &mut Measurements) {
        for (layer, minima) in self.minima.parts() {
            minima.push(out, layer);
        }
    }
}

/// Builds the `gradient_confusion` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<GradientConfusionConfig, GradientConfusionMetric>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "gradient_confusion",
        description: "gradient confusion (Sankararaman et al. 2020): min over pairs i != j of g_i . g_j and of cos(g_i, g_j) on a fixed training sample, whole network and per layer; one chunk, O(m^2) memory.",
        params: GradientConfusionConfig::params,
        // the whole sample in one chunk: m x m Gram per layer
        sampling: Sampling { sample: 500, min_sample: 2, chunk: None },
        headline: &[],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::*;

    /// Measures explicit per-example gradients (`grads[i][layer]`) in one chunk, twice.
    fn fresh(grads: &Examples) -> Measurements {
        measure_twice(
            &mut GradientConfusionMetric::default(),
            grads,
            grads.len(),
            &[],
        )
    }

    /// Brute force over ordered pairs `i != j`: `(min dot, min cos)`.
    fn reference(flat: &[Vec<f32>]) -> (f64, f64) {
        let (mut min_dot, mut min_cos) = (f64::INFINITY, f64::INFINITY);
        for i in 0..flat.len() {
            for j in 0..flat.len() {
                if i != j {
                    let d = dot(&flat[i], &flat[j]);
                    min_dot = min_dot.min(d);
                    let norms = (dot(&flat[i], &flat[i]) * dot(&flat[j], &flat[j])).sqrt();
                    if norms > 0.0 {
                        min_cos = min_cos.min(d / norms);
                    }
                }
            }
        }
        (min_dot, min_cos)
    }

    fn close(got: f64, want: f64) {
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn matches_brute_force_whole_network_and_per_layer() {
        let grads = random_examples(15, &[6, 4], 1, 0.2);
        let got = fresh(&grads);
        assert_eq!(got.values().len(), 6);
        for (suffix, vectors) in whole_and_layers(&grads) {
            let (d, c) = reference(&vectors);
            close(got[&format!("gradient_confusion_min_dot{suffix}")], d);
            close(got[&format!("gradient_confusion_min_cos{suffix}")], c);
            if suffix.is_empty() {
                assert!(d < 0.0 && c < 0.0, "random gradients conflict somewhere");
            }
        }
    }

    #[test]
    fn scaling_scales_the_inner_product_and_keeps_the_cosine() {
        let grads = random_examples(9, &[5], 2, 0.2);
        let scaled = rescaled_examples(&grads, |_| 3.0);
        let (a, b) = (fresh(&grads), fresh(&scaled));
        close(
            b["gradient_confusion_min_dot"],
            9.0 * a["gradient_confusion_min_dot"],
        );
        close(
            b["gradient_confusion_min_cos"],
            a["gradient_confusion_min_cos"],
        );
    }

    #[test]
    fn identical_orthogonal_and_zero_gradients() {
        let same = vec![vec![vec![1.0f32, -2.0, 2.0]]; 5];
        let got = fresh(&same);
        close(got["gradient_confusion_min_dot"], 9.0);
        close(got["gradient_confusion_min_cos"], 1.0);
        let mut orthogonal = orthogonal_examples(&[1.0, 2.0, 3.0, 4.0]);
        let got = fresh(&orthogonal);
        assert_eq!(got["gradient_confusion_min_dot"], 0.0);
        assert_eq!(got["gradient_confusion_min_cos"], 0.0);
        orthogonal[1][0][0] = -0.5; // conflicts with example 0 only
        orthogonal.push(vec![vec![0.0; 4]]); // zero gradient: no cosine
        let got = fresh(&orthogonal);
        close(got["gradient_confusion_min_dot"], -0.5);
        close(got["gradient_confusion_min_cos"], -0.5 / 4.25f64.sqrt());
        let zero = vec![vec![vec![0.0f32; 2]]; 3];
        let got = fresh(&zero);
        let names: Vec<&str> = got.values().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "gradient_confusion_min_dot",
                "gradient_confusion_min_dot/l0"
            ]
        );
    }

    #[test]
    fn gram_matrices_and_no_parameters() {
        let metric = build(&PluginArgs::empty()).unwrap();
        assert!(metric.needs().gram);
        assert!(build(&PluginArgs::from_toml("samples = 77").unwrap()).is_err());
    }
}
