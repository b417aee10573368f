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
//! measurements.

use coherent_core::{
    check_sampling, inventory, zero_per_layer, Batch, BatchGrads, CoherenceMetric, ConfigError,
    GradRequest, LayerInfo, Measurement, MetricEntry, ParamDoc, PluginArgs,
};
use serde::Deserialize;

/// Parameters of the `cosine_matrix` metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineMatrixConfig {
    /// Measure every this many steps.
    #[serde(default = "coherent_core::default_every_steps")]
    pub every_steps: usize,
    /// Size `m` of the fixed sample of training examples (at least 2).
    #[serde(default = "coherent_core::default_sample")]
    pub sample: usize,
    /// Also report per-layer values.
    #[serde(default = "coherent_core::default_per_layer")]
    pub per_layer: bool,
    /// Examples per backward pass: the model holds `chunk x P` per-example values at a time.
    #[serde(default = "default_chunk")]
    pub chunk: usize,
}

fn default_chunk() -> usize {
    32
}

/// Streaming accumulator of the normalised sums.
#[derive(Clone, Debug)]
pub struct CosineMatrixMetric {
    config: CosineMatrixConfig,
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

impl CosineMatrixMetric {
    /// A metric with `config`.
    pub fn new(config: CosineMatrixConfig) -> CosineMatrixMetric {
        CosineMatrixMetric {
            config,
            names: vec![],
            whole: vec![],
            layer: vec![],
            counted: 0,
            layer_counted: vec![],
            norms: vec![],
        }
    }
}

impl CoherenceMetric for CosineMatrixMetric {
    fn needs(&self) -> GradRequest {
        GradRequest {
            per_example: true,
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
        Some(self.config.chunk)
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        zero_per_layer(&mut self.whole, layers);
        if self.config.per_layer {
            zero_per_layer(&mut self.layer, layers);
        }
        self.counted = 0;
        self.layer_counted.clear();
        self.layer_counted.resize(layers.len(), 0);
        self.norms.resize(layers.len(), 0.0);
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        let per_layer = self.config.per_layer;
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
            for l in 0..self.norms.len() {
                let g = row(l);
                if per_layer && self.norms[l] > 0.0 {
                    let inv_l = 1.0 / self.norms[l].sqrt();
                    self.layer_counted[l] += 1;
                    let (w, v) = (&mut self.whole[l], &mut self.layer[l]);
                    for ((w, v), x) in w.iter_mut().zip(v.iter_mut()).zip(g) {
                        let x = *x as f64;
                        *w += x * inv;
                        *v += x * inv_l;
                    }
                } else if total > 0.0 {
                    // Only the whole-network sum (a zero layer adds nothing to it anyway).
                    for (w, x) in self.whole[l].iter_mut().zip(g) {
                        *w += *x as f64 * inv;
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Vec<Measurement> {
        let mut out = Vec::new();
        let u2: f64 = self.whole.iter().flatten().map(|v| v * v).sum();
        if let Some(c) = mean_pairwise_cos(u2, self.counted) {
            out.push(("mean_pairwise_cos".to_string(), c));
        }
        if self.config.per_layer {
            for ((name, u), n) in self.names.iter().zip(&self.layer).zip(&self.layer_counted) {
                let u2: f64 = u.iter().map(|v| v * v).sum();
                if let Some(c) = mean_pairwise_cos(u2, *n) {
                    out.push((format!("mean_pairwise_cos/{name}"), c));
                }
            }
        }
        out
    }
}

/// Builds the `cosine_matrix` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    let config: CosineMatrixConfig = args.parse()?;
    let why = "a pair of examples";
    check_sampling(args, config.every_steps, config.sample, 2, why)?;
    if config.chunk == 0 {
        return Err(args.invalid("chunk", "must be at least 1"));
    }
    Ok(Box::new(CosineMatrixMetric::new(config)))
}

inventory::submit! {
    MetricEntry {
        name: "cosine_matrix",
        description: "mean pairwise cosine of per-example gradients (|sum_i g_i/|g_i||^2 - m) / (m (m-1)) in O(m), zero gradients excluded, whole network and per layer.",
        params: &[
            ParamDoc { name: "every_steps", ty: "integer", default: "50", doc: "measure every N optimisation steps (and at the start and the end)" },
            ParamDoc { name: "sample", ty: "integer", default: "1000", doc: "size m >= 2 of the fixed sample of training examples" },
            ParamDoc { name: "per_layer", ty: "boolean", default: "true", doc: "also report mean_pairwise_cos/<layer> (each layer's gradients normalised on their own)" },
            ParamDoc { name: "chunk", ty: "integer", default: "32", doc: "examples per backward pass (the model materialises chunk x P per-example values)" },
        ],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::{measure_examples, random_examples};

    type Grads = Vec<Vec<Vec<f32>>>;

    fn config(m: usize, chunk: usize) -> CosineMatrixConfig {
        CosineMatrixConfig {
            every_steps: 1,
            sample: m,
            per_layer: true,
            chunk,
        }
    }

    /// Feeds explicit per-example gradients (`grads[i][layer]`) through `metric` in chunks of
    /// its own `chunk_size()`.
    fn measure(metric: &mut CosineMatrixMetric, grads: &Grads) -> Vec<Measurement> {
        let chunk = metric.chunk_size().unwrap();
        measure_examples(metric, grads, chunk, &[])
    }

    fn fresh(grads: &Grads, chunk: usize) -> Vec<Measurement> {
        measure(
            &mut CosineMatrixMetric::new(config(grads.len(), chunk)),
            grads,
        )
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
        let flat: Vec<Vec<f32>> = grads.iter().map(|g| g.concat()).collect();
        let want = reference(&flat);
        for chunk in [1, 4, 19, 32] {
            let ms = fresh(&grads, chunk);
            close(get(&ms, "mean_pairwise_cos"), want);
            for l in 0..3 {
                let layer: Vec<Vec<f32>> = grads.iter().map(|g| g[l].clone()).collect();
                close(
                    get(&ms, &format!("mean_pairwise_cos/l{l}")),
                    reference(&layer),
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
        let flat: Vec<Vec<f32>> = grads.iter().map(|g| g.concat()).collect();
        close(get(&ms, "mean_pairwise_cos"), reference(&flat));
        let layer1: Vec<Vec<f32>> = grads.iter().map(|g| g[1].clone()).collect();
        close(get(&ms, "mean_pairwise_cos/l1"), reference(&layer1));
        let without: Grads = grads[..9].to_vec();
        close(
            get(&ms, "mean_pairwise_cos"),
            get(&fresh(&without, 2), "mean_pairwise_cos"),
        );
    }

    #[test]
    fn rescaling_examples_changes_nothing_identical_and_orthogonal() {
        let grads = random_examples(11, &[5], 3, 0.3);
        let rescaled: Grads = grads
            .iter()
            .enumerate()
            .map(|(i, g)| vec![g[0].iter().map(|v| v * (i as f32 + 0.5) * 10.0).collect()])
            .collect();
        close(
            get(&fresh(&rescaled, 3), "mean_pairwise_cos"),
            get(&fresh(&grads, 5), "mean_pairwise_cos"),
        );
        let same = vec![vec![vec![0.5f32, -2.0], vec![1.0]]; 6];
        close(get(&fresh(&same, 4), "mean_pairwise_cos"), 1.0);
        let orthogonal: Grads = (0..5)
            .map(|i| {
                let mut g = vec![0.0; 5];
                g[i] = (i + 1) as f32;
                vec![g]
            })
            .collect();
        close(get(&fresh(&orthogonal, 2), "mean_pairwise_cos"), 0.0);
    }

    #[test]
    fn measurements_reuse_state_without_leaking_between_them() {
        let grads = random_examples(7, &[3, 2], 4, 0.3);
        let mut metric = CosineMatrixMetric::new(CosineMatrixConfig {
            per_layer: false,
            ..config(7, 3)
        });
        let once = measure(&mut metric, &grads);
        assert_eq!(once.len(), 1);
        assert_eq!(measure(&mut metric, &grads), once);
        close(
            get(&once, "mean_pairwise_cos"),
            get(&fresh(&grads, 3), "mean_pairwise_cos"),
        );
    }

    #[test]
    fn small_chunks_of_per_example_gradients_and_bad_parameters() {
        let metric = build(&PluginArgs::empty()).unwrap();
        assert_eq!(metric.chunk_size(), Some(32));
        assert!(metric.needs().per_example);
        for (text, bad) in [
            ("every_steps = 0", "0"),
            ("sample = 1", "1"),
            ("chunk = 0", "0"),
        ] {
            let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
            assert_eq!(&text[err.span.unwrap()], bad);
        }
    }
}
