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
//! in chunks, so the cost is one backward pass per chunk and the memory O(P). Per-layer values
//! restrict `S` and `Q` to one layer; the whole-network `alpha_m` is their average weighted by
//! each layer's share of `Q`.
//!
//! Reports `coherence`, `alpha_m`, `coherence/<layer>` (with `per_layer`), and the loss and
//! accuracy of the sample (`sample_loss`, `sample_acc`).

use coherent_core::{
    inventory, BatchGrads, CoherenceMetric, ConfigError, GradRequest, LayerInfo, Measurement,
    MetricEntry, ParamDoc, PluginArgs,
};
use serde::Deserialize;

/// Parameters of the `coherence` metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoherenceConfig {
    /// Measure every this many steps.
    #[serde(default = "default_every")]
    pub every_steps: usize,
    /// Size `m` of the fixed sample of training examples.
    #[serde(default = "default_sample")]
    pub sample: usize,
    /// Also report per-layer values.
    #[serde(default = "default_per_layer")]
    pub per_layer: bool,
}

fn default_every() -> usize {
    50
}
fn default_sample() -> usize {
    1000
}
fn default_per_layer() -> bool {
    true
}

/// Streaming accumulator of `S` and `Q` per layer.
#[derive(Clone, Debug)]
pub struct CoherenceMetricImpl {
    config: CoherenceConfig,
    names: Vec<String>,
    sum: Vec<Vec<f64>>,
    sq: Vec<f64>,
    m: usize,
    loss: f64,
    correct: usize,
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
        self.sum = layers.iter().map(|l| vec![0.0; l.params]).collect();
        self.sq = vec![0.0; layers.len()];
        (self.m, self.loss, self.correct) = (0, 0.0, 0);
    }

    fn accumulate(&mut self, chunk: &BatchGrads) {
        for (acc, s) in self.sum.iter_mut().zip(&chunk.sum) {
            for (a, v) in acc.iter_mut().zip(s) {
                *a += *v as f64;
            }
        }
        for (q, norms) in self.sq.iter_mut().zip(&chunk.sq_norms) {
            *q += norms.iter().map(|&v| v as f64).sum::<f64>();
        }
        self.m += chunk.batch_size;
        self.loss += chunk.losses.iter().map(|&l| l as f64).sum::<f64>();
        self.correct += chunk.correct.iter().filter(|&&c| c).count();
    }

    fn finish(&mut self) -> Vec<Measurement> {
        let layer_s2: Vec<f64> = self
            .sum
            .iter()
            .map(|s| s.iter().map(|v| v * v).sum())
            .collect();
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
    if config.every_steps == 0 {
        return Err(args.invalid("every_steps", "must be at least 1"));
    }
    if config.sample == 0 {
        return Err(args.invalid("sample", "must be at least 1"));
    }
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
        let layers: Vec<LayerInfo> = grads[0]
            .iter()
            .enumerate()
            .map(|(l, g)| LayerInfo {
                name: format!("l{l}"),
                kind: "test",
                params: g.len(),
            })
            .collect();
        let mut metric = CoherenceMetricImpl::new(CoherenceConfig {
            every_steps: 1,
            sample: grads.len(),
            per_layer: true,
        });
        metric.begin(&layers);
        for part in grads.chunks(chunk) {
            let sum = (0..layers.len())
                .map(|l| {
                    (0..layers[l].params)
                        .map(|k| part.iter().map(|g| g[l][k]).sum())
                        .collect()
                })
                .collect();
            let sq_norms = (0..layers.len())
                .map(|l| {
                    part.iter()
                        .map(|g| g[l].iter().map(|v| v * v).sum())
                        .collect()
                })
                .collect();
            metric.accumulate(&BatchGrads {
                batch_size: part.len(),
                losses: vec![1.0; part.len()],
                correct: vec![true; part.len()],
                sum,
                sq_norms,
                ..Default::default()
            });
        }
        metric.finish()
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
    fn zero_parameters_are_rejected() {
        let text = "every_steps = 0";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        assert_eq!(&text[err.span.unwrap()], "0");
    }
}
