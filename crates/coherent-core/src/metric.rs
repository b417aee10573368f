//! The `CoherenceMetric` trait: a measurement streamed over a fixed sample of examples.

use crate::{Batch, BatchGrads, GradRequest, LayerInfo};

/// One named scalar of a measurement (`coherence`, `coherence/fc1`, `sample_loss`, ...).
pub type Measurement = (String, f64);

/// A metric of the per-example gradients of a fixed sample of training examples.
///
/// The runner draws the metric's sample once per run (`sample_size` examples of the training
/// split, with the run's seed), and at every measurement point streams it through the model
/// in chunks: [`CoherenceMetric::begin`], then [`CoherenceMetric::accumulate`] once per chunk
/// with the quantities of [`CoherenceMetric::needs`], then [`CoherenceMetric::finish`]. A
/// metric therefore holds O(P) state at most, whatever the sample size.
pub trait CoherenceMetric: Send {
    /// What the metric needs from each chunk's backward pass.
    fn needs(&self) -> GradRequest;

    /// Number of training examples in the fixed sample.
    fn sample_size(&self) -> usize;

    /// Measure every this many optimisation steps (and at step 0 and at the end).
    fn every_steps(&self) -> usize;

    /// Examples per backward pass (`None`: the runner's default of 500).
    ///
    /// A metric of pairwise inner products across the whole sample (stiffness, gradient
    /// confusion) asks for the whole sample in one chunk and reads the `m x m` Gram matrix
    /// of [`BatchGrads::gram`]; a metric that materialises per-example gradients asks for small
    /// chunks to bound the `chunk x P` matrix.
    fn chunk_size(&self) -> Option<usize> {
        None
    }

    /// Starts a measurement.
    fn begin(&mut self, layers: &[LayerInfo]);

    /// Adds one chunk of the sample: its gradient quantities, and the examples themselves
    /// (`batch.labels` are the chunk's labels, for class-aware metrics).
    fn accumulate(&mut self, chunk: &BatchGrads, batch: &Batch);

    /// Ends the measurement and returns the named values.
    fn finish(&mut self) -> Vec<Measurement>;
}
