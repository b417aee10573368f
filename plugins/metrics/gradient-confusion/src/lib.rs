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
//! the whole sample as **one chunk** (`chunk_size() = sample`): memory O(L m^2) for the model's
//! per-layer Grams plus O(m^2) for the whole-network Gram (f64, reused between measurements),
//! and the forward pass of `m` examples at once; the pair loop is O(L m^2). If a runner passes
//! several chunks anyway, only pairs within a chunk are seen.

use coherent_core::{
    check_sampling, inventory, Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest,
    LayerInfo, Measurement, MetricEntry, ParamDoc, PluginArgs,
};
use serde::Deserialize;

/// Parameters of the `gradient_confusion` metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradientConfusionConfig {
    /// Measure every this many steps.
    #[serde(default = "coherent_core::default_every_steps")]
    pub every_steps: usize,
    /// Size `m` of the fixed sample of training examples (at least 2), passed in one chunk.
    #[serde(default = "coherent_core::default_one_chunk_sample")]
    pub sample: usize,
    /// Also report per-layer values.
    #[serde(default = "coherent_core::default_per_layer")]
    pub per_layer: bool,
}

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

    fn push(&self, out: &mut Vec<Measurement>, suffix: &str) {
        for (name, v) in [("dot", self.dot), ("cos", self.cos)] {
            if v.is_finite() {
                out.push((format!("gradient_confusion_min_{name}{suffix}"), v));
            }
        }
    }
}

/// Minima of the whole network and of each layer.
#[derive(Clone, Debug)]
pub struct GradientConfusionMetric {
    config: GradientConfusionConfig,
    names: Vec<String>,
    /// The whole-network Gram of the current chunk (sum of the layers' Grams).
    gram: Vec<f64>,
    whole: Minima,
    layers: Vec<Minima>,
}

impl GradientConfusionMetric {
    /// A metric with `config`.
    pub fn new(config: GradientConfusionConfig) -> GradientConfusionMetric {
        GradientConfusionMetric {
            config,
            names: vec![],
            gram: vec![],
            whole: Minima::default(),
            layers: vec![],
        }
    }
}

impl CoherenceMetric for GradientConfusionMetric {
    fn needs(&self) -> GradRequest {
        GradRequest {
            gram: true,
            ..GradRequest::SUM
        }
    }

    fn sample_size(&self) -> usize {
        self.config.sample
    }

    fn every_steps(&self) -> usize {
        self.config.every_steps
    }

    fn chunk_size(&self) -> Option<usize> {
        Some(self.config.sample)
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        self.whole = Minima::default();
        self.layers.clear();
        self.layers.resize(layers.len(), Minima::default());
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        let n = chunk.batch_size;
        chunk.whole_gram_into(&mut self.gram);
        self.whole.add_pairs(&self.gram, n);
        if self.config.per_layer {
            for (minima, layer) in self.layers.iter_mut().zip(&chunk.gram) {
                minima.add_pairs(layer, n);
            }
        }
    }

    fn finish(&mut self) -> Vec<Measurement> {
        let mut out = Vec::new();
        self.whole.push(&mut out, "");
        if self.config.per_layer {
            for (name, minima) in self.names.iter().zip(&self.layers) {
                minima.push(&mut out, &format!("/{name}"));
            }
        }
        out
    }
}

/// Builds the `gradient_confusion` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    let config: GradientConfusionConfig = args.parse()?;
    let why = "a pair of examples";
    check_sampling(args, config.every_steps, config.sample, 2, why)?;
    Ok(Box::new(GradientConfusionMetric::new(config)))
}

inventory::submit! {
    MetricEntry {
        name: "gradient_confusion",
        description: "gradient confusion (Sankararaman et al. 2020): min over pairs i != j of g_i . g_j and of cos(g_i, g_j) on a fixed training sample, whole network and per layer; one chunk, O(m^2) memory.",
        params: &[
            ParamDoc { name: "every_steps", ty: "integer", default: "50", doc: "measure every N optimisation steps (and at the start and the end)" },
            ParamDoc { name: "sample", ty: "integer", default: "500", doc: "size m >= 2 of the fixed sample, passed through the model in one chunk (m x m Gram per layer)" },
            ParamDoc { name: "per_layer", ty: "boolean", default: "true", doc: "also report both minima per layer (<quantity>/<layer>)" },
        ],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::{measure_examples, random_examples};
    use std::collections::BTreeMap;

    type Grads = Vec<Vec<Vec<f32>>>;

    /// Feeds explicit per-example gradients (`grads[i][layer]`) through `metric` in chunks of
    /// its own `chunk_size()`.
    fn measure(metric: &mut GradientConfusionMetric, grads: &Grads) -> BTreeMap<String, f64> {
        let chunk = metric.chunk_size().unwrap();
        measure_examples(metric, grads, chunk, &[])
            .into_iter()
            .collect()
    }

    fn fresh(grads: &Grads) -> BTreeMap<String, f64> {
        let mut metric = GradientConfusionMetric::new(GradientConfusionConfig {
            every_steps: 1,
            sample: grads.len(),
            per_layer: true,
        });
        measure(&mut metric, grads)
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
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
        assert_eq!(got.len(), 6);
        let flat: Vec<Vec<f32>> = grads.iter().map(|g| g.concat()).collect();
        let (d, c) = reference(&flat);
        close(got["gradient_confusion_min_dot"], d);
        close(got["gradient_confusion_min_cos"], c);
        for l in 0..2 {
            let layer: Vec<Vec<f32>> = grads.iter().map(|g| g[l].clone()).collect();
            let (d, c) = reference(&layer);
            close(got[&format!("gradient_confusion_min_dot/l{l}")], d);
            close(got[&format!("gradient_confusion_min_cos/l{l}")], c);
        }
        assert!(d < 0.0 && c < 0.0, "random gradients conflict somewhere");
    }

    #[test]
    fn scaling_scales_the_inner_product_and_keeps_the_cosine() {
        let grads = random_examples(9, &[5], 2, 0.2);
        let scaled: Grads = grads
            .iter()
            .map(|g| {
                g.iter()
                    .map(|l| l.iter().map(|v| v * 3.0).collect())
                    .collect()
            })
            .collect();
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
        let mut orthogonal: Grads = (0..4)
            .map(|i| {
                let mut g = vec![0.0; 4];
                g[i] = (i + 1) as f32;
                vec![g]
            })
            .collect();
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
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            [
                "gradient_confusion_min_dot",
                "gradient_confusion_min_dot/l0"
            ]
        );
    }

    #[test]
    fn one_chunk_and_no_leaks_between_measurements() {
        let metric = build(&PluginArgs::from_toml("sample = 77").unwrap()).unwrap();
        assert_eq!(metric.chunk_size(), Some(77));
        assert!(metric.needs().gram);
        let grads = random_examples(7, &[3, 2], 3, 0.2);
        let mut metric = GradientConfusionMetric::new(GradientConfusionConfig {
            every_steps: 1,
            sample: 7,
            per_layer: false,
        });
        let once = measure(&mut metric, &grads);
        assert_eq!(once.len(), 2);
        assert_eq!(measure(&mut metric, &grads), once);
    }

    #[test]
    fn bad_parameters_are_located() {
        for (text, bad) in [("every_steps = 0", "0"), ("sample = 0", "0")] {
            let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
            assert_eq!(&text[err.span.unwrap()], bad);
        }
        assert!(build(&PluginArgs::empty()).is_ok());
    }
}
