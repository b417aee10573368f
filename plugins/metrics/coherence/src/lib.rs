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
//! accuracy of the sample (`sample_loss`, `sample_acc`). The sample (1000 examples by
//! default; one suffices) is streamed in chunks of 500 by default.

use coherent_core::{
    Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest, LayerInfo, Measurements,
    MetricEntry, PluginArgs, PluginConfig, Sampling,
};
use rayon::prelude::*;
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `coherence` metric: none of its own (the runner reads `every_steps`,
/// `sample`, `chunk` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct CoherenceConfig {}

/// Streaming accumulator of `S` and `Q` per layer.
#[derive(Clone, Debug, Default)]
pub struct CoherenceMetricImpl {
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

/// Values per task of the passes over `S`: 16 blocks of 1024, whose squared norms are summed
/// in this grouping whatever the number of threads (so the sums do not depend on it).
const TASK: usize = 16 * 1024;

/// `|x|^2`, in eight f32 lanes per block of 1024 and f64 across blocks (fast and accurate),
/// in parallel tasks of 16,384 values (a grouping that does not depend on the threads).
pub fn sq_norm(x: &[f32]) -> f64 {
    let tasks: Vec<f64> = x.par_chunks(TASK).map(task_sq_norm).collect();
    tasks.iter().sum()
}

/// `|t|^2` of one task's values, block by block.
fn task_sq_norm(t: &[f32]) -> f64 {
    t.chunks(1024).map(block_sq_norm).sum()
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

/// Copies `src` into `dst` and returns `|src|^2` (the same sum as [`sq_norm`]), in one pass
/// of parallel tasks.
fn copy_and_sq_norm(src: &[f32], dst: &mut [f32]) -> f64 {
    let tasks: Vec<f64> = src
        .par_chunks(TASK)
        .zip(dst.par_chunks_mut(TASK))
        .map(|(s, d)| {
            d.copy_from_slice(s);
            task_sq_norm(s)
        })
        .collect();
    tasks.iter().sum()
}

/// `acc += x`, in parallel tasks.
fn add_into(acc: &mut [f32], x: &[f32]) {
    acc.par_chunks_mut(TASK)
        .zip(x.par_chunks(TASK))
        .for_each(|(a, x)| a.iter_mut().zip(x).for_each(|(a, v)| *a += v));
}

/// m-coherence `|S|^2 / Q`; `None` when every gradient is zero.
pub fn m_coherence(sum_sq_norm: f64, q: f64) -> Option<f64> {
    (q > 0.0).then(|| sum_sq_norm / q)
}

impl CoherenceMetric for CoherenceMetricImpl {
    fn needs(&self) -> GradRequest {
        GradRequest::SQ_NORMS
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
                add_into(acc, s);
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

    fn finish(&mut self, out: &mut Measurements) {
        let layer_s2: Vec<f64> = if self.chunks == 1 {
            self.first_sq.clone()
        } else {
            self.sum.iter().map(|s| sq_norm(s)).collect()
        };
        let (s2, q): (f64, f64) = (layer_s2.iter().sum(), self.sq.iter().sum());
        let m = self.m.max(1) as f64;
        if let Some(c) = m_coherence(s2, q) {
            out.push("coherence", c);
            out.push("alpha_m", c / m);
        }
        for ((name, s2), q) in self.names.iter().zip(&layer_s2).zip(&self.sq) {
            if let Some(c) = m_coherence(*s2, *q) {
                out.push_layer("coherence", name, c);
            }
        }
        out.push("sample_loss", self.loss / m);
        out.push("sample_acc", self.correct as f64 / m);
    }
}

/// Builds the `coherence` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<CoherenceConfig, CoherenceMetricImpl>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "coherence",
        description: "m-coherence |sum g_i|^2 / sum |g_i|^2 (and alpha_m) of a fixed training sample, whole network and per layer.",
        params: CoherenceConfig::params,
        sampling: Sampling::STREAMED,
        headline: &["coherence"],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::*;

    type Grads = Vec<Vec<Vec<f32>>>;

    fn fresh(grads: &Grads, chunk: usize) -> Measurements {
        measure_examples(&mut CoherenceMetricImpl::default(), grads, chunk, &[])
    }

    #[test]
    fn orthogonal_gradients_give_one() {
        let grads = orthogonal_examples(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!((fresh(&grads, 2)["coherence"] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn identical_gradients_give_m_and_alpha_one() {
        let grads = vec![vec![vec![0.5f32, -2.0, 1.0]]; 7];
        let ms = fresh(&grads, 3);
        assert!((ms["coherence"] - 7.0).abs() < 1e-6);
        assert!((ms["alpha_m"] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn zero_mean_gradients_give_zero() {
        let grads = vec![vec![vec![1.0f32, 2.0]], vec![vec![-1.0, -2.0]]];
        assert_eq!(fresh(&grads, 1)["coherence"], 0.0);
    }

    #[test]
    fn brute_force_value_scale_invariance_and_chunking() {
        let grads = random_examples(23, &[9, 4], 1, 0.3);
        let (_, flat) = &whole_and_layers(&grads)[0];
        let s: Vec<f64> = (0..13)
            .map(|k| flat.iter().map(|g| g[k] as f64).sum())
            .collect();
        let q: f64 = flat.iter().flatten().map(|v| (*v as f64).powi(2)).sum();
        let want = s.iter().map(|v| v * v).sum::<f64>() / q;
        let got = fresh(&grads, 5)["coherence"];
        assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
        assert!((fresh(&grads, 23)["coherence"] - got).abs() < 1e-6 * got);
        let scaled = rescaled_examples(&grads, |_| 1e3);
        assert!((fresh(&scaled, 5)["coherence"] - got).abs() < 1e-5 * got);
    }

    #[test]
    fn whole_alpha_is_the_energy_weighted_average_of_layer_alphas() {
        let grads = random_examples(17, &[6, 11, 3], 2, 0.3);
        let ms = fresh(&grads, 4);
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
            .map(|l| q[l] / total * ms[&format!("coherence/l{l}")] / m)
            .sum();
        assert!(
            (weighted - ms["alpha_m"]).abs() < 1e-6,
            "{weighted} vs {}",
            ms["alpha_m"]
        );
    }

    #[test]
    fn sq_norm_matches_a_plain_sum() {
        // several tasks and blocks, and a tail of each
        for n in [5003, 3 * TASK + 1029] {
            let x: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 3.0).collect();
            let want: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
            assert!((sq_norm(&x) - want).abs() < 1e-5 * want, "{n}");
            let mut copy = vec![0.0; n];
            let norm = copy_and_sq_norm(&x, &mut copy);
            assert_eq!(copy, x, "{n}");
            assert_eq!(norm.to_bits(), sq_norm(&x).to_bits(), "{n}: the same sums");
            let mut twice = x.clone();
            add_into(&mut twice, &x);
            assert!(twice.iter().zip(&x).all(|(t, v)| *t == 2.0 * v), "{n}");
        }
    }

    #[test]
    fn measurements_reuse_state_without_leaking_between_them() {
        let grads = random_examples(9, &[5, 3], 3, 0.3);
        // several chunks, and one (whose norms are taken while copying it)
        for chunk in [4, 9] {
            measure_twice(&mut CoherenceMetricImpl::default(), &grads, chunk, &[]);
        }
    }

    #[test]
    fn unknown_parameters_are_rejected() {
        assert!(build(&PluginArgs::empty()).is_ok());
        let text = "samples = 10";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        assert_eq!(&text[err.span.unwrap()], "samples");
    }
}
