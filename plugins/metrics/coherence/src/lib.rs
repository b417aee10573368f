//! Metric plugin `coherence`: the m-coherence of per-example gradients (Chatterjee &
//! Zielinski, "Making Coherence Out of Nothing at All", arXiv 2008.01217; "On the
//! Generalization Mystery in Deep Learning", arXiv 2203.10036).
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i`:
//!
//! ```text
//! alpha_m     = |sum_i g_i|^2 / (m * sum_i |g_i|^2)
//! m-coherence = alpha_m / alpha_perp = |sum_i g_i|^2 / sum_i |g_i|^2      in [0, m]
//! ```
//!
//! 1 means the examples' gradients are orthogonal (each helps only itself), `m` that they are
//! identical. Only `S = sum_i g_i` and `Q = sum_i |g_i|^2` are needed, streamed over the sample
//! in chunks (`S` summed in f32, like the gradients themselves), so the cost is one backward
//! pass per chunk and the memory O(P). Per-layer values
//! restrict `S` and `Q` to one layer; the whole-network `alpha_m` is their average weighted by
//! each layer's share of `Q`.
//!
//! Reports `coherence`, `alpha_m`, `coherence/<layer>` (with `per_layer`), and the loss and
//! accuracy of the sample (`sample_loss`, `sample_acc`).

use coherent_core::{
    check_sampling, inventory, Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest,
    LayerInfo, Measurement, MetricEntry, ParamDoc, PluginArgs,
};
use serde::Deserialize;

/// Parameters of the `coherence` metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoherenceConfig {
    /// Measure every this many steps.
    #[serde(default = "coherent_core::default_every_steps")]
    pub every_steps: usize,
    /// Size `m` of the fixed sample of training examples.
    #[serde(default = "coherent_core::default_sample")]
    pub sample: usize,
    /// Also report per-layer values.
    #[serde(default = "coherent_core::default_per_layer")]
    pub per_layer: bool,
}

/// Streaming accumulator of `S` and `Q` per layer.
#[derive(Clone, Debug)]
pub struct CoherenceMetricImpl {
    config: CoherenceConfig,
    names: Vec<String>,
    /// `S` per layer (f32, like the gradients it sums; reused from measurement to measurement).
    sum: Vec<Vec<f32>>,
    /// Chunks accumulated since `begin`.
    chunks: usize,
    /// `|S_l|^2` of the first chunk, computed while copying it (a one-chunk measurement, such
    /// as the coherence of a training batch, then never reads `S` again).
    first_sq: Vec<f64>,
    sq: Vec<f64>,
    m: usize,
    loss: f64,
    correct: usize,
}

/// `|x|^2`, in eight f32 lanes per block of 1024 and f64 across blocks (fast and accurate).
pub fn sq_norm(x: &[f32]) -> f64 {
    x.chunks(1024).map(block_sq_norm).sum()
}

fn block_sq_norm(block: &[f32]) -> f64 {
    let mut lanes = [0.0f32; 8];
    let mut parts = block.chunks_exact(8);
    for part in &mut parts {
        for (l, v) in lanes.iter_mut().zip(part) {
            *l += v * v;
        }
    }
    let tail: f32 = parts.remainder().iter().map(|v| v * v).sum();
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64
}

/// Copies `src` into `dst` and returns `|src|^2`, in one pass.
fn copy_and_sq_norm(src: &[f32], dst: &mut [f32]) -> f64 {
    src.chunks(1024)
        .zip(dst.chunks_mut(1024))
        .map(|(s, d)| {
            d.copy_from_slice(s);
            block_sq_norm(s)
        })
        .sum()
}

/// m-coherence `|S|^2 / Q`; `None` when every gradient is zero.
pub fn m_coherence(sum_sq_norm: f64, q: f64) -> Option<f64> {
    (q > 0.0).then(|| sum_sq_norm / q)
}

impl CoherenceMetricImpl {
    /// A metric with `config`.
    pub fn new(config: CoherenceConfig) -> CoherenceMetricImpl {
        CoherenceMetricImpl {
            config,
            names: vec![],
            sum: vec![],
            chunks: 0,
            first_sq: vec![],
            sq: vec![],
            m: 0,
            loss: 0.0,
            correct: 0,
        }
    }
}

impl CoherenceMetric for CoherenceMetricImpl {
    fn needs(&self) -> GradRequest {
        GradRequest {
            sq_norms: true,
            ..GradRequest::SUM
        }
    }

    fn sample_size(&self) -> usize {
        self.config.sample
    }

    fn every_steps(&self) -> usize {
        self.config.every_steps
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        self.sum.resize_with(layers.len(), Vec::new);
        for (s, l) in self.sum.iter_mut().zip(layers) {
            s.resize(l.params, 0.0);
        }
        self.sq = vec![0.0; layers.len()];
        (self.m, self.loss, self.correct, self.chunks) = (0, 0.0, 0, 0);
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        if self.chunks == 0 {
            self.first_sq.clear();
            for (acc, s) in self.sum.iter_mut().zip(&chunk.sum) {
                self.first_sq.push(copy_and_sq_norm(s, acc));
            }
        } else {
            for (acc, s) in self.sum.iter_mut().zip(&chunk.sum) {
                acc.iter_mut().zip(s).for_each(|(a, v)| *a += v);
            }
        }
        self.chunks += 1;
        for (q, norms) in self.sq.iter_mut().zip(&chunk.sq_norms) {
            *q += norms.iter().map(|&v| v as f64).sum::<f64>();
        }
        self.m += chunk.batch_size;
        self.loss += chunk.losses.iter().map(|&l| l as f64).sum::<f64>();
        self.correct += chunk.correct.iter().filter(|&&c| c).count();
    }

    fn finish(&mut self) -> Vec<Measurement> {
        let layer_s2: Vec<f64> = if self.chunks == 1 {
            self.first_sq.clone()
        } else {
            self.sum.iter().map(|s| sq_norm(s)).collect()
        };
        let (s2, q): (f64, f64) = (layer_s2.iter().sum(), self.sq.iter().sum());
        let m = self.m.max(1) as f64;
        let mut out = Vec::new();
        if let Some(c) = m_coherence(s2, q) {
            out.push(("coherence".to_string(), c));
            out.push(("alpha_m".to_string(), c / m));
        }
        if self.config.per_layer {
            for ((name, s2), q) in self.names.iter().zip(&layer_s2).zip(&self.sq) {
                if let Some(c) = m_coherence(*s2, *q) {
                    out.push((format!("coherence/{name}"), c));
                }
            }
        }
        out.push(("sample_loss".to_string(), self.loss / m));
        out.push(("sample_acc".to_string(), self.correct as f64 / m));
        out
    }
}

/// Builds the `coherence` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    let config: CoherenceConfig = args.parse()?;
    check_sampling(args, config.every_steps, config.sample, 1, "")?;
    Ok(Box::new(CoherenceMetricImpl::new(config)))
}

inventory::submit! {
    MetricEntry {
        name: "coherence",
        description: "m-coherence |sum g_i|^2 / sum |g_i|^2 (and alpha_m) of a fixed training sample, whole network and per layer.",
        params: &[
            ParamDoc { name: "every_steps", ty: "integer", default: "50", doc: "measure every N optimisation steps (and at the start and the end)" },
            ParamDoc { name: "sample", ty: "integer", default: "1000", doc: "size m of the fixed sample of training examples" },
            ParamDoc { name: "per_layer", ty: "boolean", default: "true", doc: "also report coherence/<layer> for every layer" },
        ],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds explicit per-example gradients (`grads[i][layer]`) through the metric in chunks.
    fn measure(grads: &[Vec<Vec<f32>>], chunk: usize) -> Vec<Measurement> {
        let layers = coherent_core::example_layers(grads);
        let mut metric = CoherenceMetricImpl::new(CoherenceConfig {
            every_steps: 1,
            sample: grads.len(),
            per_layer: true,
        });
        metric.begin(&layers);
        for part in grads.chunks(chunk) {
            metric.accumulate(&chunk_of(part), &Batch::default());
        }
        metric.finish()
    }

    /// The `BatchGrads` a model would return for explicit per-example gradients.
    fn chunk_of(part: &[Vec<Vec<f32>>]) -> BatchGrads {
        let layers = part[0].len();
        BatchGrads {
            batch_size: part.len(),
            losses: vec![1.0; part.len()],
            correct: vec![true; part.len()],
            sum: (0..layers)
                .map(|l| {
                    (0..part[0][l].len())
                        .map(|k| part.iter().map(|g| g[l][k]).sum())
                        .collect()
                })
                .collect(),
            sq_norms: (0..layers)
                .map(|l| {
                    part.iter()
                        .map(|g| g[l].iter().map(|v| v * v).sum())
                        .collect()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn get(ms: &[Measurement], name: &str) -> f64 {
        ms.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {ms:?}"))
            .1
    }

    fn random_grads(m: usize, sizes: &[usize], seed: u64) -> Vec<Vec<Vec<f32>>> {
        let mut rng = coherent_core::Rng::new(seed);
        (0..m)
            .map(|_| {
                sizes
                    .iter()
                    .map(|&n| (0..n).map(|_| rng.normal() as f32 + 0.3).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn orthogonal_gradients_give_one() {
        let grads: Vec<Vec<Vec<f32>>> = (0..5)
            .map(|i| {
                let mut g = vec![0.0; 5];
                g[i] = (i + 1) as f32;
                vec![g]
            })
            .collect();
        assert!((get(&measure(&grads, 2), "coherence") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn identical_gradients_give_m_and_alpha_one() {
        let grads = vec![vec![vec![0.5f32, -2.0, 1.0]]; 7];
        let ms = measure(&grads, 3);
        assert!((get(&ms, "coherence") - 7.0).abs() < 1e-6);
        assert!((get(&ms, "alpha_m") - 1.0).abs() < 1e-6);
    }

    #[test]
    fn zero_mean_gradients_give_zero() {
        let grads = vec![vec![vec![1.0f32, 2.0]], vec![vec![-1.0, -2.0]]];
        assert_eq!(get(&measure(&grads, 1), "coherence"), 0.0);
    }

    #[test]
    fn brute_force_value_scale_invariance_and_chunking() {
        let grads = random_grads(23, &[9, 4], 1);
        let flat: Vec<Vec<f32>> = grads.iter().map(|g| g.concat()).collect();
        let s: Vec<f64> = (0..13)
            .map(|k| flat.iter().map(|g| g[k] as f64).sum())
            .collect();
        let q: f64 = flat.iter().flatten().map(|v| (*v as f64).powi(2)).sum();
        let want = s.iter().map(|v| v * v).sum::<f64>() / q;
        let got = get(&measure(&grads, 5), "coherence");
        assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
        assert!((get(&measure(&grads, 23), "coherence") - got).abs() < 1e-6 * got);
        let scaled: Vec<Vec<Vec<f32>>> = grads
            .iter()
            .map(|g| {
                g.iter()
                    .map(|l| l.iter().map(|v| v * 1e3).collect())
                    .collect()
            })
            .collect();
        assert!((get(&measure(&scaled, 5), "coherence") - got).abs() < 1e-5 * got);
    }

    #[test]
    fn whole_alpha_is_the_energy_weighted_average_of_layer_alphas() {
        let grads = random_grads(17, &[6, 11, 3], 2);
        let ms = measure(&grads, 4);
        let m = 17.0;
        let q: Vec<f64> = (0..3)
            .map(|l| {
                grads
                    .iter()
                    .map(|g| g[l].iter().map(|v| (*v as f64).powi(2)).sum::<f64>())
                    .sum()
            })
            .collect();
        let total: f64 = q.iter().sum();
        let weighted: f64 = (0..3)
            .map(|l| q[l] / total * get(&ms, &format!("coherence/l{l}")) / m)
            .sum();
        assert!(
            (weighted - get(&ms, "alpha_m")).abs() < 1e-6,
            "{weighted} vs {}",
            get(&ms, "alpha_m")
        );
    }

    #[test]
    fn sq_norm_matches_a_plain_sum() {
        let x: Vec<f32> = (0..5003)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 3.0)
            .collect();
        let want: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
        assert!((sq_norm(&x) - want).abs() < 1e-5 * want);
    }

    #[test]
    fn measurements_reuse_state_without_leaking_between_them() {
        let grads = random_grads(9, &[5, 3], 3);
        let once = measure(&grads, 4);
        let layers = vec![
            LayerInfo {
                name: "l0".into(),
                kind: "test",
                params: 5,
            },
            LayerInfo {
                name: "l1".into(),
                kind: "test",
                params: 3,
            },
        ];
        let mut metric = CoherenceMetricImpl::new(CoherenceConfig {
            every_steps: 1,
            sample: 9,
            per_layer: true,
        });
        for _ in 0..2 {
            metric.begin(&layers);
            for part in grads.chunks(4) {
                metric.accumulate(&chunk_of(part), &Batch::default());
            }
            let again = metric.finish();
            assert!((get(&again, "coherence") - get(&once, "coherence")).abs() < 1e-9);
        }
    }

    #[test]
    fn zero_parameters_are_rejected() {
        let text = "every_steps = 0";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        assert_eq!(&text[err.span.unwrap()], "0");
    }
}
