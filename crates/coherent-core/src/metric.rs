//! The `CoherenceMetric` trait: a measurement streamed over a fixed sample of examples.

use crate::{Batch, BatchGrads, GradRequest, LayerInfo, Measurements};

/// A metric of the per-example gradients of a fixed sample of training examples.
///
/// A metric only measures; the runner schedules it. From each `[[metrics]]` table the runner
/// reads `every_steps`, `sample` (the size `m` of the fixed sample), `chunk` (examples per
/// backward pass) and `per_layer`, draws the sample once per run, and at every measurement
/// point streams it through the model: [`CoherenceMetric::begin`], then
/// [`CoherenceMetric::accumulate`] once per chunk with the quantities of
/// [`CoherenceMetric::needs`], then [`CoherenceMetric::finish`]. Metrics that share a sample
/// and a chunk size are measured in the same passes, with the union of their requests, so a
/// second metric on the same sample costs little more than its own arithmetic. A metric
/// therefore holds O(P) state at most, whatever the sample size.
///
/// What a metric needs of its sample — how large it must be, whether the whole sample must be
/// one chunk (pairwise metrics that read the `m x m` Gram matrix), the chunk size that bounds
/// its memory — is declared in its registry entry ([`crate::Sampling`]).
pub trait CoherenceMetric: Send {
    /// What the metric needs from each chunk's backward pass.
    fn needs(&self) -> GradRequest;

    /// Starts a measurement.
    fn begin(&mut self, layers: &[LayerInfo]);

    /// Adds one chunk of the sample: its gradient quantities, and the examples themselves
    /// (`batch.labels` are the chunk's labels, for class-aware metrics).
    fn accumulate(&mut self, chunk: &BatchGrads, batch: &Batch);

    /// Ends the measurement and writes the named values into `out` (per-layer values with
    /// [`Measurements::push_layer`], which the runner keeps or drops by `per_layer`).
    fn finish(&mut self, out: &mut Measurements);
}
