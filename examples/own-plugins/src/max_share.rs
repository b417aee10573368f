//! Metric plugin `max_share`: how much the single most influential example dominates a sample,
//! `max_i |g_i|^2 / sum_i |g_i|^2` over the fixed sample of per-example gradients `g_i`.
//!
//! It is `1/m` when every example's gradient is as long as the others' and approaches 1 when
//! one example's gradient dwarfs the rest (a memorised outlier). Per-layer values
//! (`max_share/<layer>`) restrict the norms to one layer. It needs only the per-example squared
//! norms of each chunk, so the sample streams through in chunks of any size.

use coherent_core::{
    Batch, BatchGrads, CoherenceMetric, ConfigError, GradRequest, LayerInfo, Measurements,
    MetricEntry, PluginArgs, PluginConfig, Sampling,
};
use serde::Deserialize;

/// Parameters of `max_share`: none of its own (the runner reads `every_steps`, `sample`,
/// `chunk` and `per_layer`).
#[derive(Clone, Debug, Default, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct MaxShareConfig {}

/// Largest and summed squared norms, for the whole network and each layer.
#[derive(Clone, Debug, Default)]
pub struct MaxShare {
    layers: Vec<String>,
    /// `(largest, sum)` of the whole network, then of each layer.
    parts: Vec<(f64, f64)>,
}

impl CoherenceMetric for MaxShare {
    fn needs(&self) -> GradRequest {
        GradRequest::SQ_NORMS
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.layers = layers.iter().map(|l| l.name.clone()).collect();
        self.parts = vec![(0.0, 0.0); layers.len() + 1];
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        for i in 0..chunk.batch_size {
            let mut whole = 0.0;
            for (l, norms) in chunk.sq_norms.iter().enumerate() {
                let q = norms[i] as f64;
                whole += q;
                let part = &mut self.parts[l + 1];
                *part = (part.0.max(q), part.1 + q);
            }
            let part = &mut self.parts[0];
            *part = (part.0.max(whole), part.1 + whole);
        }
    }

    fn finish(&mut self, out: &mut Measurements) {
        for (k, &(largest, sum)) in self.parts.iter().enumerate() {
            if sum > 0.0 {
                let layer = k.checked_sub(1).map(|l| self.layers[l].as_str());
                out.push_at("max_share", layer, largest / sum);
            }
        }
    }
}

/// Builds the `max_share` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn CoherenceMetric>, ConfigError> {
    Ok(Box::new(
        args.checked_default::<MaxShareConfig, MaxShare>()?,
    ))
}

coherent_core::register! {
    MetricEntry {
        name: "max_share",
        description: "Largest share of one example in the sample's summed squared gradient norms, max_i |g_i|^2 / sum_i |g_i|^2, whole network and per layer.",
        params: MaxShareConfig::params,
        sampling: Sampling::STREAMED,
        headline: &[],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::explicit::{dot, measure_twice, random_examples, whole_and_layers};

    /// Every value against the definition on explicit vectors, streamed in chunks of 1, 4 and
    /// the whole sample (each measurement twice, to catch state leaking between them).
    #[test]
    fn matches_the_definition_whole_and_per_layer() {
        let grads = random_examples(10, &[7, 3], 5, 0.1);
        for chunk in [1, 4, 10] {
            let ms = measure_twice(&mut MaxShare::default(), &grads, chunk, &[]);
            for (suffix, vectors) in whole_and_layers(&grads) {
                let norms: Vec<f64> = vectors.iter().map(|g| dot(g, g)).collect();
                let want = norms.iter().cloned().fold(0.0, f64::max) / norms.iter().sum::<f64>();
                let got = ms.get(&format!("max_share{suffix}")).unwrap();
                assert!(
                    (got - want).abs() < 1e-6,
                    "{suffix}, chunk {chunk}: {got} vs {want}"
                );
            }
        }
    }
}
