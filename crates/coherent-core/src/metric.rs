//! The `CoherenceMetric` trait: a measurement streamed over a fixed sample of examples.

use crate::{BatchGrads, GradRequest, LayerInfo};

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

    /// Starts a measurement.
    fn begin(&mut self, layers: &[LayerInfo]);

    /// Adds one chunk of the sample.
    fn accumulate(&mut self, chunk: &BatchGrads);

    /// Ends the measurement and returns the named values.
    fn finish(&mut self) -> Vec<Measurement>;
}
