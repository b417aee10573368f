//! Measuring the metrics due at a step: each metric's fixed sample streamed through the
//! model, metrics that share a sample and a chunk size in the same passes.

use crate::plan::PlannedMetric;
use coherent_core::{Batch, BatchGrads, GradRequest, LayerInfo, Measurements, Model, Rng, Split};
use coherent_record::Samples;

/// What the metrics' passes go through: the model, its layers and the training split.
pub struct Pass<'a> {
    /// The model.
    pub model: &'a mut dyn Model,
    /// Its parameterised layers.
    pub layers: &'a [LayerInfo],
    /// The training split the samples are drawn from.
    pub train: &'a Split,
}

/// The fixed samples of a run's metrics and the buffers of their passes.
pub struct MetricRunner {
    /// `samples[k]`: the training examples of metric `k`'s sample.
    samples: Vec<Vec<usize>>,
    batch: Batch,
    grads: BatchGrads,
}

impl MetricRunner {
    /// The samples of `metrics` in a run with `seed` over `n` training examples. Every metric
    /// draws from one stream, so a smaller sample is part of a larger one and the metrics of a
    /// run compare example for example.
    pub fn new(metrics: &[PlannedMetric], seed: u64, n: usize) -> MetricRunner {
        let samples = metrics
            .iter()
            .map(|m| Rng::derived(seed, "metric-sample-0").sample_indices(n, m.schedule.sample))
            .collect();
        MetricRunner {
            samples,
            batch: Batch::default(),
            grads: BatchGrads::default(),
        }
    }

    /// The training examples of each metric's sample, by plugin name (`samples.json`).
    pub fn samples(&self, metrics: &[PlannedMetric]) -> Samples {
        let pairs = metrics.iter().zip(&self.samples);
        Samples(pairs.map(|(m, s)| (m.plugin.clone(), s.clone())).collect())
    }

    /// Measures the metrics due at `step` (of `total`) and appends their values to `out`, in
    /// the metrics' order.
    pub fn measure(
        &mut self,
        metrics: &mut [PlannedMetric],
        step: usize,
        total: usize,
        pass: Pass<'_>,
        out: &mut Measurements,
    ) {
        let Pass {
            model,
            layers,
            train,
        } = pass;
        let due: Vec<usize> = (0..metrics.len())
            .filter(|&k| metrics[k].schedule.due(step, total))
            .collect();
        let mut results: Vec<Option<Measurements>> = vec![None; metrics.len()];
        for group in groups(metrics, &due) {
            let request = group.iter().fold(GradRequest::SUM, |r, &k| {
                r.union(&metrics[k].metric.needs())
            });
            for &k in &group {
                metrics[k].metric.begin(layers);
            }
            let chunk = metrics[group[0]].schedule.chunk.max(1);
            for part in self.samples[group[0]].chunks(chunk) {
                self.batch.gather(train, part);
                model.forward_backward(&self.batch, &request, &mut self.grads);
                for &k in &group {
                    metrics[k].metric.accumulate(&self.grads, &self.batch);
                }
            }
            for &k in &group {
                let mut values = Measurements::new(metrics[k].schedule.per_layer);
                metrics[k].metric.finish(&mut values);
                results[k] = Some(values);
            }
        }
        for values in results.into_iter().flatten() {
            out.extend(values);
        }
    }
}

/// The metrics `due` grouped by (sample size, chunk size), in order of first appearance.
fn groups(metrics: &[PlannedMetric], due: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &k in due {
        let key = |m: &PlannedMetric| (m.schedule.sample, m.schedule.chunk);
        match groups
            .iter_mut()
            .find(|g| key(&metrics[g[0]]) == key(&metrics[k]))
        {
            Some(g) => g.push(k),
            None => groups.push(vec![k]),
        }
    }
    groups
}
