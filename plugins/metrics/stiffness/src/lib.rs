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
//! O(m^2 (in + out))), so the plugin asks for the whole sample (`m >= 2`, default 500) as
//! **one chunk**: memory O(L m^2) for the model's per-layer Grams (4 bytes each)
//! plus O(m^2) for their sum, the whole-network Gram (8 bytes each, reused between
//! measurements), and the forward pass of `m` examples at once; the pair loop is O(L m^2).
//! If a runner passes several chunks anyway, only pairs within a chunk are counted.

mod pairs;

pub use pairs::{add_pairs, ClassCosines, PairSums, Stiffness};

use coherent_core::{
    Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest, LayerInfo, Measurements,
    MetricEntry, PerLayer, PluginArgs, PluginConfig, Sampling,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `stiffness` metric: none of its own (the runner reads `every_steps`,
/// `sample` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct StiffnessConfig {}

/// Pair sums of the whole network, of each layer, and per class pair.
#[derive(Clone, Debug, Default)]
pub struct StiffnessMetric {
    /// The whole-network Gram of the current chunk (sum of the layers' Grams).
    gram: Vec<f64>,
    stats: PerLayer<Stiffness>,
    classes: ClassCosines,
}

/// Writes the six means of `s`, of the whole network (`layer` = `None`) or of one layer.
fn push_means(out: &mut Measurements, s: &Stiffness, layer: Option<&str>) {
    for (set, part) in [
        (&s.all, ""),
        (&s.within, "_within"),
        (&s.between, "_between"),
    ] {
        if let Some((sign, cos)) = set.means() {
            out.push_at(&format!("stiffness_sign{part}"), layer, sign);
            out.push_at(&format!("stiffness_cos{part}"), layer, cos);
        }
    }
}

impl CoherenceMetric for StiffnessMetric {
    fn needs(&self) -> GradRequest {
        GradRequest::GRAM
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.stats.begin(layers);
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
            &mut self.stats.whole,
        );
        for (stats, layer) in self.stats.layers.iter_mut().zip(&chunk.gram) {
            add_pairs(layer, n, labels, None, stats);
        }
    }

    fn finish(&mut self, out: &mut Measurements) {
        for (layer, s) in self.stats.parts() {
            push_means(out, s, layer);
        }
        for (a, b, cos) in self.classes.means() {
            out.push(format!("stiffness_cos_class/{a}-{b}"), cos);
        }
    }
}

/// Builds the `stiffness` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<StiffnessConfig, StiffnessMetric>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "stiffness",
        description: "stiffness (Fort et al. 2019): mean sign and cosine of g_i . g_j over pairs of a fixed training sample, all / within / between classes, class-pair cosine matrix; one chunk, O(m^2) memory.",
        params: StiffnessConfig::params,
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
    use std::collections::BTreeMap;

    /// Measures explicit per-example gradients (`grads[i][layer]`) with `labels` (none: a
    /// regression) in one chunk, twice.
    fn fresh(grads: &Examples, labels: &[u32]) -> BTreeMap<String, f64> {
        let metric = &mut StiffnessMetric::default();
        let ms = measure_twice(metric, grads, grads.len(), labels);
        ms.into_values().into_iter().collect()
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
        let mut want = BTreeMap::new();
        for (suffix, vectors) in whole_and_layers(&grads) {
            // the class matrix is the whole network's
            want.extend(reference(&vectors, &labels, &suffix, suffix.is_empty()));
        }
        assert!(want.contains_key("stiffness_cos_class/2-5"));
        assert!(want.contains_key("stiffness_sign_within/l1"));
        assert_same(&got, &want, 1e-6);
    }

    #[test]
    fn gram_matrices_and_no_parameters() {
        let metric = build(&PluginArgs::empty()).unwrap();
        assert!(metric.needs().gram);
        assert!(build(&PluginArgs::from_toml("chunk = 3").unwrap()).is_err());
    }

    #[test]
    fn rescaling_examples_and_zero_gradients_change_nothing() {
        let grads = random_examples(10, &[5, 4], 2, 0.2);
        let labels: Vec<u32> = (0..10).map(|i| (i % 4) as u32).collect();
        let base = fresh(&grads, &labels);
        let mut rescaled = rescaled_examples(&grads, |i| 0.01 * (i + 1) as f32 * 37.0);
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
        let got = fresh(&orthogonal_examples(&[1.0, 2.0, 3.0, 4.0]), &[]);
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
}
