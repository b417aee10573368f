//! Metric plugin `gsnr`: the gradient signal-to-noise ratio of Liu, Chen, Wang et al.,
//! "Understanding Why Neural Networks Generalize Well Through GSNR of Parameters" (ICLR 2020,
//! arXiv 2001.07384), averaged over parameters.
//!
//! For a fixed sample of `m` training examples with per-example gradients `g_i`, with
//! `S = sum_i g_i` and the coordinate-wise sum of squares `C = sum_i g_i (.) g_i`, for every
//! parameter `j`:
//!
//! ```text
//! mean_j = S_j / m
//! var_j  = C_j / m - mean_j^2            (population variance over the m examples, / m)
//! gsnr_j = mean_j^2 / var_j
//! gsnr   = mean of gsnr_j over the parameters with var_j > 0
//! ```
//!
//! The variance is the population one (divided by `m`, not `m - 1`), as in the paper's
//! definition over the data distribution. A parameter whose `var_j` is at most
//! `rel_var_floor * C_j / m` counts as having **zero variance** and is left out of the mean:
//! it has no noise (every example agrees on it, or its gradient is 0 everywhere), and a
//! smaller variance is f32 rounding of the model's sums, not signal. Equivalently, parameters
//! with `gsnr_j >= 1 / rel_var_floor - 1` are left out; `rel_var_floor = 0` keeps exactly those
//! with `var_j > 0`. The fraction left out is reported beside the mean.
//!
//! Reports `gsnr` and `gsnr_zero_var_frac` for the whole network, and `gsnr/<layer>` and
//! `gsnr_zero_var_frac/<layer>` with `per_layer`. `gsnr` is left out when no parameter has
//! variance.
//!
//! Cost: one backward pass per chunk with the coordinate-wise sum of squares (for a dense layer
//! one more product `(Delta (.) Delta)^T (A (.) A)`, about the cost of the weight gradient),
//! and O(P) memory: `S` and `C` accumulated in f64 (16 bytes per parameter), reused between
//! measurements; the chunks stream, so any sample size fits. A variance needs two examples, so
//! the sample has `m >= 2` (default 1000).

use coherent_core::{
    add_per_layer, zero_per_layer, Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest,
    LayerInfo, Measurements, MetricEntry, PluginArgs, PluginConfig, Sampling,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `gsnr` metric (the runner reads `every_steps`, `sample`, `chunk` and
/// `per_layer`).
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct GsnrConfig {
    /// A variance at most this fraction of the mean square counts as zero (0: exactly
    /// var_j > 0).
    #[serde(default = "default_floor")]
    #[param(ty = "float in [0, 1)")]
    pub rel_var_floor: f64,
}

fn default_floor() -> f64 {
    1e-5
}

/// Streaming accumulator of `S` and `C` per layer, in f64.
#[derive(Clone, Debug)]
pub struct GsnrMetric {
    config: GsnrConfig,
    names: Vec<String>,
    sum: Vec<Vec<f64>>,
    sum_sq: Vec<Vec<f64>>,
    m: usize,
}

/// GSNR summary of one block of parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GsnrSum {
    /// Sum of `gsnr_j` over the parameters with variance.
    pub total: f64,
    /// Parameters with variance.
    pub counted: usize,
    /// Parameters with (numerically) zero variance.
    pub zero_var: usize,
}

impl GsnrSum {
    /// Adds another block.
    pub fn merge(self, o: GsnrSum) -> GsnrSum {
        GsnrSum {
            total: self.total + o.total,
            counted: self.counted + o.counted,
            zero_var: self.zero_var + o.zero_var,
        }
    }
}

/// Sums `gsnr_j` over one block from `S_j` and `C_j` of `m` examples.
pub fn gsnr_sum(sum: &[f64], sum_sq: &[f64], m: usize, rel_var_floor: f64) -> GsnrSum {
    let inv_m = 1.0 / m as f64;
    let mut out = GsnrSum::default();
    for (s, c) in sum.iter().zip(sum_sq) {
        let (mean, mean_sq) = (s * inv_m, c * inv_m);
        let var = mean_sq - mean * mean;
        if var > rel_var_floor * mean_sq && var > 0.0 {
            out.total += mean * mean / var;
            out.counted += 1;
        } else {
            out.zero_var += 1;
        }
    }
    out
}

impl GsnrMetric {
    /// A metric with `config`.
    pub fn new(config: GsnrConfig) -> GsnrMetric {
        GsnrMetric {
            config,
            names: vec![],
            sum: vec![],
            sum_sq: vec![],
            m: 0,
        }
    }
}

impl CoherenceMetric for GsnrMetric {
    fn needs(&self) -> GradRequest {
        GradRequest::COORD_SUM_SQ
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        zero_per_layer(&mut self.sum, layers);
        zero_per_layer(&mut self.sum_sq, layers);
        self.m = 0;
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        add_per_layer(&mut self.sum, &chunk.sum);
        add_per_layer(&mut self.sum_sq, &chunk.coord_sum_sq);
        self.m += chunk.batch_size;
    }

    fn finish(&mut self, out: &mut Measurements) {
        if self.m == 0 {
            return;
        }
        let layers: Vec<GsnrSum> = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(s, c)| gsnr_sum(s, c, self.m, self.config.rel_var_floor))
            .collect();
        let whole = layers.iter().fold(GsnrSum::default(), |a, b| a.merge(*b));
        let mut push = |layer: Option<&str>, g: &GsnrSum| {
            if g.counted > 0 {
                out.push_at("gsnr", layer, g.total / g.counted as f64);
            }
            let params = g.counted + g.zero_var;
            if params > 0 {
                let frac = g.zero_var as f64 / params as f64;
                out.push_at("gsnr_zero_var_frac", layer, frac);
            }
        };
        push(None, &whole);
        for (name, g) in self.names.iter().zip(&layers) {
            push(Some(name), g);
        }
    }
}

/// Builds the `gsnr` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    let config: GsnrConfig = args.parse()?;
    if !(0.0..1.0).contains(&config.rel_var_floor) {
        return Err(args.invalid("rel_var_floor", "must be in [0, 1)"));
    }
    Ok(Box::new(GsnrMetric::new(config)))
}

coherent_core::register! {
    MetricEntry {
        name: "gsnr",
        description: "mean gradient signal-to-noise ratio mean_j^2 / var_j over parameters (Liu et al. 2020; population variance over a fixed training sample), whole network and per layer.",
        params: GsnrConfig::params,
        sampling: Sampling { min_sample: 2, ..Sampling::STREAMED },
        headline: &[],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::*;

    /// Measures explicit per-example gradients (`grads[i][layer]`) in chunks, twice.
    fn measure(grads: &Examples, chunk: usize) -> Measurements {
        let config = GsnrConfig {
            rel_var_floor: 1e-5,
        };
        measure_twice(&mut GsnrMetric::new(config), grads, chunk, &[])
    }

    /// Two-pass brute force over `layers` of the examples: mean of `mean_j^2 / var_j` over the
    /// parameters whose two-pass variance is positive, and the count of the others.
    fn reference(grads: &Examples, layers: &[usize]) -> (f64, usize) {
        let m = grads.len() as f64;
        let (mut total, mut counted, mut zero) = (0.0, 0, 0);
        for &l in layers {
            for j in 0..grads[0][l].len() {
                let values: Vec<f64> = grads.iter().map(|g| g[l][j] as f64).collect();
                let mean = values.iter().sum::<f64>() / m;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
                if var > 0.0 {
                    total += mean * mean / var;
                    counted += 1;
                } else {
                    zero += 1;
                }
            }
        }
        (total / counted as f64, zero)
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol * want.abs(), "{got} vs {want}");
    }

    #[test]
    fn matches_two_pass_brute_force_whole_network_and_per_layer() {
        let grads = random_examples(29, &[12, 5], 1, 0.4);
        let ms = measure(&grads, 6);
        close(ms["gsnr"], reference(&grads, &[0, 1]).0, 1e-5);
        for l in 0..2 {
            close(ms[&format!("gsnr/l{l}")], reference(&grads, &[l]).0, 1e-5);
        }
        assert_eq!(ms["gsnr_zero_var_frac"], 0.0);
    }

    #[test]
    fn chunking_and_scale_do_not_change_the_values() {
        let grads = random_examples(24, &[7, 3], 2, 0.4);
        let base = measure(&grads, 24);
        let scaled = rescaled_examples(&grads, |_| 50.0);
        for other in [measure(&grads, 1), measure(&grads, 7), measure(&scaled, 5)] {
            assert_eq!(other.values().len(), base.values().len());
            for ((n, a), (n2, b)) in base.values().iter().zip(other.values()) {
                assert_eq!(n, n2);
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1e-3), "{n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn constant_and_zero_parameters_are_excluded_and_counted() {
        let mut grads = random_examples(16, &[6, 4], 3, 0.4);
        for g in &mut grads {
            g[0][1] = 0.7; // every example agrees: no noise
            g[0][4] = 0.0; // no gradient at all
            g[1][2] = 0.0;
        }
        let ms = measure(&grads, 5);
        let (want, zero) = reference(&grads, &[0, 1]);
        assert_eq!(zero, 3);
        close(ms["gsnr"], want, 1e-5);
        close(ms["gsnr_zero_var_frac"], 3.0 / 10.0, 1e-12);
        close(ms["gsnr_zero_var_frac/l0"], 2.0 / 6.0, 1e-12);
        close(ms["gsnr/l1"], reference(&grads, &[1]).0, 1e-5);
    }

    #[test]
    fn identical_gradients_have_no_gsnr_and_two_valued_ones_a_known_one() {
        let same = vec![vec![vec![0.5f32, -2.0, 1.0]]; 6];
        let ms = measure(&same, 4);
        assert!(ms
            .values()
            .iter()
            .all(|(n, _)| !n.starts_with("gsnr/") && n != "gsnr"));
        assert_eq!(ms["gsnr_zero_var_frac"], 1.0);
        // Values a, b in equal numbers: mean (a+b)/2, variance ((a-b)/2)^2.
        let two: Examples = (0..8)
            .map(|i| vec![vec![if i % 2 == 0 { 3.0 } else { 1.0 }]])
            .collect();
        close(measure(&two, 3)["gsnr"], 4.0, 1e-9);
    }

    #[test]
    fn bad_parameters_are_located() {
        for (text, bad) in [
            ("rel_var_floor = 1.5", "1.5"),
            ("rel_var_floor = -0.1", "-0.1"),
        ] {
            let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
            assert_eq!(&text[err.span.unwrap()], bad);
        }
        assert!(build(&PluginArgs::from_toml("rel_var_floor = 0.0").unwrap()).is_ok());
        assert!(build(&PluginArgs::from_toml("samples = 10").unwrap()).is_err());
    }
}
