//! Metric plugin `stiffness`: the gradient stiffness of Fort, Nowak, Jastrzebski and
//! Narayanan, "Stiffness: A New Perspective on Generalization in Neural Networks" (arXiv
//! 1901.09491).
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i` and labels
//! `y_i`, over the pairs `i != j` of the sample:
//!
//! ```text
//! stiffness_sign = mean over pairs of sign(g_i . g_j)         (sign(0) = 0)
//! stiffness_cos  = mean over pairs of g_i . g_j / (|g_i| |g_j|)
//! ```
//!
//! with the same means restricted to pairs of the same class (`y_i = y_j`: `_within`), of
//! different classes (`_between`), and for every class pair `a <= b` the mean cosine over pairs
//! with `{y_i, y_j} = {a, b}` (`stiffness_cos_class/a-b`, the paper's class stiffness matrix).
//! Both are symmetric in `i, j`, so the mean over ordered pairs `i != j` is the mean over the
//! `m (m - 1) / 2` unordered pairs computed here. A pair in which either gradient is zero has no
//! cosine and is left out of every mean; a mean without pairs is left out of the measurement,
//! and so are the class-based values when the dataset has no labels (regression).
//!
//! Reports `stiffness_sign`, `stiffness_cos`, `stiffness_sign_within`, `stiffness_cos_within`,
//! `stiffness_sign_between`, `stiffness_cos_between` for the whole network, the same six as
//! `<quantity>/<layer>` from each layer's gradients (with `per_layer`; a pair is then left out
//! of a layer's means when either gradient is zero in that layer), and the class matrix for the
//! whole network.
//!
//! Cost: every inner product comes from the `m x m` Gram matrix of each layer, computed by the
//! model from one backward pass (for a dense layer `(A A^T + 1) (.) (Delta Delta^T)`,
//! O(m^2 (in + out))), so the plugin asks for the whole sample as **one chunk**
//! (`chunk_size() = sample`): memory O(L m^2) for the model's per-layer Grams (4 bytes each)
//! plus O(m^2) for their sum, the whole-network Gram (8 bytes each, reused between
//! measurements), and the forward pass of `m` examples at once; the pair loop is O(L m^2).
//! If a runner passes several chunks anyway, only pairs within a chunk are counted.

mod pairs;

pub use pairs::{add_pairs, ClassCosines, PairSums, Stiffness};

use coherent_core::{
    check_sampling, inventory, Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest,
    LayerInfo, Measurement, MetricEntry, ParamDoc, PluginArgs,
};
use serde::Deserialize;

/// Parameters of the `stiffness` metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StiffnessConfig {
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

/// Pair sums of the whole network, of each layer, and per class pair.
#[derive(Clone, Debug)]
pub struct StiffnessMetric {
    config: StiffnessConfig,
    names: Vec<String>,
    /// The whole-network Gram of the current chunk (sum of the layers' Grams).
    gram: Vec<f64>,
    whole: Stiffness,
    layers: Vec<Stiffness>,
    classes: ClassCosines,
}

impl StiffnessMetric {
    /// A metric with `config`.
    pub fn new(config: StiffnessConfig) -> StiffnessMetric {
        StiffnessMetric {
            config,
            names: vec![],
            gram: vec![],
            whole: Stiffness::default(),
            layers: vec![],
            classes: ClassCosines::default(),
        }
    }
}

/// Appends the six means of `s` named `<quantity><suffix>`.
fn push_means(out: &mut Vec<Measurement>, s: &Stiffness, suffix: &str) {
    for (set, part) in [
        (&s.all, ""),
        (&s.within, "_within"),
        (&s.between, "_between"),
    ] {
        if let Some((sign, cos)) = set.means() {
            out.push((format!("stiffness_sign{part}{suffix}"), sign));
            out.push((format!("stiffness_cos{part}{suffix}"), cos));
        }
    }
}

impl CoherenceMetric for StiffnessMetric {
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
        self.whole = Stiffness::default();
        self.layers.clear();
        self.layers.resize(layers.len(), Stiffness::default());
        self.classes.clear();
    }

    fn accumulate(&mut self, chunk: &BatchGrads, batch: &Batch) {
        let n = chunk.batch_size;
        let labels = (!batch.regression && batch.labels.len() == n).then_some(&batch.labels[..]);
        chunk.whole_gram_into(&mut self.gram);
        add_pairs(
            &self.gram,
            n,
            labels,
            Some(&mut self.classes),
            &mut self.whole,
        );
        if self.config.per_layer {
            for (stats, layer) in self.layers.iter_mut().zip(&chunk.gram) {
                add_pairs(layer, n, labels, None, stats);
            }
        }
    }

    fn finish(&mut self) -> Vec<Measurement> {
        let mut out = Vec::new();
        push_means(&mut out, &self.whole, "");
        if self.config.per_layer {
            for (name, s) in self.names.iter().zip(&self.layers) {
                push_means(&mut out, s, &format!("/{name}"));
            }
        }
        for (a, b, cos) in self.classes.means() {
            out.push((format!("stiffness_cos_class/{a}-{b}"), cos));
        }
        out
    }
}

/// Builds the `stiffness` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    let config: StiffnessConfig = args.parse()?;
    let why = "a pair of examples";
    check_sampling(args, config.every_steps, config.sample, 2, why)?;
    Ok(Box::new(StiffnessMetric::new(config)))
}

inventory::submit! {
    MetricEntry {
        name: "stiffness",
        description: "stiffness (Fort et al. 2019): mean sign and cosine of g_i . g_j over pairs of a fixed training sample, all / within / between classes, class-pair cosine matrix; one chunk, O(m^2) memory.",
        params: &[
            ParamDoc { name: "every_steps", ty: "integer", default: "50", doc: "measure every N optimisation steps (and at the start and the end)" },
            ParamDoc { name: "sample", ty: "integer", default: "500", doc: "size m >= 2 of the fixed sample, passed through the model in one chunk (m x m Gram per layer)" },
            ParamDoc { name: "per_layer", ty: "boolean", default: "true", doc: "also report the six stiffness means per layer (<quantity>/<layer>)" },
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

    /// Feeds explicit per-example gradients (`grads[i][layer]`) with `labels` (none: a
    /// regression) through `metric` in chunks of its own `chunk_size()`.
    fn measure(
        metric: &mut StiffnessMetric,
        grads: &Grads,
        labels: &[u32],
    ) -> BTreeMap<String, f64> {
        let chunk = metric.chunk_size().unwrap();
        measure_examples(metric, grads, chunk, labels)
            .into_iter()
            .collect()
    }

    fn fresh(grads: &Grads, labels: &[u32]) -> BTreeMap<String, f64> {
        let mut metric = StiffnessMetric::new(StiffnessConfig {
            every_steps: 1,
            sample: grads.len(),
            per_layer: true,
        });
        measure(&mut metric, grads, labels)
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// Brute force over ordered pairs `i != j` of explicit vectors: the six means named with
    /// `suffix`, and the class matrix when `classes`.
    fn reference(
        flat: &[Vec<f32>],
        labels: &[u32],
        suffix: &str,
        classes: bool,
    ) -> BTreeMap<String, f64> {
        let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let mut add = |key: String, v: f64| {
            let e = sums.entry(key).or_default();
            e.0 += v;
            e.1 += 1.0;
        };
        for i in 0..flat.len() {
            for j in 0..flat.len() {
                let (ni, nj) = (
                    dot(&flat[i], &flat[i]).sqrt(),
                    dot(&flat[j], &flat[j]).sqrt(),
                );
                if i == j || ni == 0.0 || nj == 0.0 {
                    continue;
                }
                let d = dot(&flat[i], &flat[j]);
                let (sign, cos) = (if d == 0.0 { 0.0 } else { d.signum() }, d / (ni * nj));
                let part = if labels[i] == labels[j] {
                    "_within"
                } else {
                    "_between"
                };
                for p in ["", part] {
                    add(format!("stiffness_sign{p}{suffix}"), sign);
                    add(format!("stiffness_cos{p}{suffix}"), cos);
                }
                if classes {
                    let (a, b) = (labels[i].min(labels[j]), labels[i].max(labels[j]));
                    add(format!("stiffness_cos_class/{a}-{b}"), cos);
                }
            }
        }
        sums.into_iter().map(|(k, (s, n))| (k, s / n)).collect()
    }

    fn assert_same(got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>, tol: f64) {
        let names = |m: &BTreeMap<String, f64>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(got), names(want));
        for (k, w) in want {
            assert!((got[k] - w).abs() <= tol, "{k}: {} vs {w}", got[k]);
        }
    }

    #[test]
    fn matches_brute_force_pairs_classes_and_layers() {
        let grads = random_examples(14, &[6, 3], 1, 0.2);
        let labels: Vec<u32> = (0..14).map(|i| [0, 2, 5][i % 3]).collect();
        let got = fresh(&grads, &labels);
        let flat: Vec<Vec<f32>> = grads.iter().map(|g| g.concat()).collect();
        let mut want = reference(&flat, &labels, "", true);
        for l in 0..2 {
            let layer: Vec<Vec<f32>> = grads.iter().map(|g| g[l].clone()).collect();
            want.extend(reference(&layer, &labels, &format!("/l{l}"), false));
        }
        assert!(want.contains_key("stiffness_cos_class/2-5"));
        assert!(want.contains_key("stiffness_sign_within/l1"));
        assert_same(&got, &want, 1e-6);
    }

    #[test]
    fn the_whole_sample_is_one_chunk() {
        let metric = build(&PluginArgs::from_toml("sample = 321").unwrap()).unwrap();
        assert_eq!(metric.chunk_size(), Some(321));
        assert!(metric.needs().gram);
    }

    #[test]
    fn rescaling_examples_and_zero_gradients_change_nothing() {
        let grads = random_examples(10, &[5, 4], 2, 0.2);
        let labels: Vec<u32> = (0..10).map(|i| (i % 4) as u32).collect();
        let base = fresh(&grads, &labels);
        let mut rescaled: Grads = grads
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let c = 0.01 * (i + 1) as f32 * 37.0;
                g.iter()
                    .map(|l| l.iter().map(|v| v * c).collect())
                    .collect()
            })
            .collect();
        rescaled.push(vec![vec![0.0; 5], vec![0.0; 4]]);
        let mut labels2 = labels.clone();
        labels2.push(9);
        assert_same(&fresh(&rescaled, &labels2), &base, 1e-6);
    }

    #[test]
    fn identical_orthogonal_and_unlabelled() {
        let same = vec![vec![vec![0.5f32, -2.0, 1.0]]; 4];
        let got = fresh(&same, &[1, 1, 2, 2]);
        for k in [
            "stiffness_sign",
            "stiffness_cos",
            "stiffness_cos_between",
            "stiffness_cos_class/1-2",
        ] {
            assert!((got[k] - 1.0).abs() < 1e-6, "{k}");
        }
        let orthogonal: Grads = (0..4)
            .map(|i| {
                let mut g = vec![0.0; 4];
                g[i] = (i + 1) as f32;
                vec![g]
            })
            .collect();
        let got = fresh(&orthogonal, &[]);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "stiffness_cos",
                "stiffness_cos/l0",
                "stiffness_sign",
                "stiffness_sign/l0"
            ]
        );
        assert!(got.values().all(|v| *v == 0.0));
    }

    #[test]
    fn measurements_reuse_state_without_leaking_between_them() {
        let grads = random_examples(8, &[3, 3], 3, 0.2);
        let labels: Vec<u32> = (0..8).map(|i| (i % 2) as u32).collect();
        let mut metric = StiffnessMetric::new(StiffnessConfig {
            every_steps: 1,
            sample: 8,
            per_layer: false,
        });
        let once = measure(&mut metric, &grads, &labels);
        assert_eq!(measure(&mut metric, &grads, &labels), once);
        assert!(once.keys().all(|k| !k.contains("/l")));
    }

    #[test]
    fn bad_parameters_are_located() {
        for (text, bad) in [("every_steps = 0", "0"), ("sample = 1", "1")] {
            let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
            assert_eq!(&text[err.span.unwrap()], bad);
        }
        assert!(build(&PluginArgs::from_toml("chunk = 3").unwrap()).is_err());
    }
}
