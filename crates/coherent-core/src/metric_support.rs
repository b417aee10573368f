//! What the metric plugins share: the streamed per-layer sums `S = sum_i g_i` and
//! `Q = sum_i |g_i|^2` (and [`SumsMetric`], the whole metric for a quantity of `S` and `Q`), a
//! state per part of the network ([`PerLayer`]), the whole-network Gram matrix of a chunk, and
//! values written for the whole network or one layer alike.

use crate::{Batch, BatchGrads, CoherenceMetric, GradRequest, LayerInfo, Measurements};

impl Measurements {
    /// Adds `quantity` of the whole network (`layer` = `None`, as [`Measurements::push`]) or
    /// of one layer (as [`Measurements::push_layer`]): for metrics that compute the same
    /// quantities from the whole network's gradients and from each layer's.
    pub fn push_at(&mut self, quantity: &str, layer: Option<&str>, value: f64) {
        match layer {
            None => self.push(quantity, value),
            Some(layer) => self.push_layer(quantity, layer, value),
        }
    }
}

/// Resizes `bufs` to one zeroed buffer per layer, of the layer's parameter count, keeping the
/// allocations of earlier measurements.
pub fn zero_per_layer(bufs: &mut Vec<Vec<f64>>, layers: &[LayerInfo]) {
    bufs.resize_with(layers.len(), Vec::new);
    for (b, l) in bufs.iter_mut().zip(layers) {
        b.clear();
        b.resize(l.params, 0.0);
    }
}

/// Adds the per-layer f32 values of a chunk (`chunk.sum`, `chunk.coord_sum_sq`, ...) into the
/// f64 accumulators `acc`.
pub fn add_per_layer(acc: &mut [Vec<f64>], chunk: &[Vec<f32>]) {
    for (a, c) in acc.iter_mut().zip(chunk) {
        a.iter_mut().zip(c).for_each(|(a, v)| *a += *v as f64);
    }
}

/// Streaming accumulator of `S = sum_i g_i` (in f64) and `Q = sum_i |g_i|^2` per layer, over the
/// chunks of one measurement: [`SumAndSqNorms::begin`], [`SumAndSqNorms::accumulate`] per
/// chunk (which needs `sum` and `sq_norms`), then [`SumAndSqNorms::sums`].
///
/// Memory O(P), 8 bytes per parameter, reused between measurements.
#[derive(Clone, Debug, Default)]
pub struct SumAndSqNorms {
    names: Vec<String>,
    sum: Vec<Vec<f64>>,
    q: Vec<f64>,
    m: usize,
}

/// `|S|^2` and `Q` of the whole network and of each layer, from [`SumAndSqNorms::sums`].
#[derive(Clone, Debug, PartialEq)]
pub struct SqSums {
    /// `|S|^2` of the whole network (the sum of the layers' `|S_l|^2`).
    pub s2: f64,
    /// `Q` of the whole network (the sum of the layers' `Q_l`).
    pub q: f64,
    /// `(|S_l|^2, Q_l)` of each layer, in the order of [`SumAndSqNorms::names`].
    pub layers: Vec<(f64, f64)>,
}

impl SumAndSqNorms {
    /// What [`SumAndSqNorms::accumulate`] reads from a chunk: `sum` and `sq_norms`.
    pub const NEEDS: GradRequest = GradRequest::SQ_NORMS;

    /// Starts a measurement of `layers`.
    pub fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        zero_per_layer(&mut self.sum, layers);
        self.q.clear();
        self.q.resize(layers.len(), 0.0);
        self.m = 0;
    }

    /// Adds one chunk's `sum` and `sq_norms`.
    pub fn accumulate(&mut self, chunk: &BatchGrads) {
        add_per_layer(&mut self.sum, &chunk.sum);
        for (q, norms) in self.q.iter_mut().zip(&chunk.sq_norms) {
            *q += norms.iter().map(|&v| v as f64).sum::<f64>();
        }
        self.m += chunk.batch_size;
    }

    /// Number `m` of examples accumulated since [`SumAndSqNorms::begin`].
    pub fn examples(&self) -> usize {
        self.m
    }

    /// Names of the layers, as given to [`SumAndSqNorms::begin`].
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `|S|^2` and `Q` of the whole network and of each layer.
    pub fn sums(&self) -> SqSums {
        let layer_s2: Vec<f64> = self
            .sum
            .iter()
            .map(|s| s.iter().map(|v| v * v).sum())
            .collect();
        SqSums {
            s2: layer_s2.iter().sum(),
            q: self.q.iter().sum(),
            layers: layer_s2.into_iter().zip(self.q.iter().copied()).collect(),
        }
    }

    /// `(layer, |S|^2, Q)` of the whole network (`layer` = `None`), then of each layer by
    /// name: the parts a metric writes with [`Measurements::push_at`].
    pub fn parts(&self) -> Vec<(Option<&str>, f64, f64)> {
        let sums = self.sums();
        let layers = self.names.iter().zip(sums.layers);
        std::iter::once((None, sums.s2, sums.q))
            .chain(layers.map(|(name, (s2, q))| (Some(name.as_str()), s2, q)))
            .collect()
    }
}

/// A quantity of the sums `S` and `Q` of a sample (m-coherence, gradient diversity, noise
/// scale, ...): [`SumsMetric`] makes the whole metric of it.
pub trait FromSums: Send {
    /// Writes the values of the sample whose sums are `sums` (see [`SumAndSqNorms::parts`] and
    /// [`SumAndSqNorms::examples`]).
    fn finish(&self, sums: &SumAndSqNorms, out: &mut Measurements);
}

/// The metric of a [`FromSums`] quantity: streams `S` and `Q` over the chunks of the sample,
/// then writes the quantity.
#[derive(Clone, Debug, Default)]
pub struct SumsMetric<F> {
    quantity: F,
    sums: SumAndSqNorms,
}

impl<F: FromSums> SumsMetric<F> {
    /// The metric of `quantity`.
    pub fn new(quantity: F) -> SumsMetric<F> {
        SumsMetric {
            quantity,
            sums: SumAndSqNorms::default(),
        }
    }
}

impl<F: FromSums> CoherenceMetric for SumsMetric<F> {
    fn needs(&self) -> GradRequest {
        SumAndSqNorms::NEEDS
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        self.sums.begin(layers);
    }

    fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
        self.sums.accumulate(chunk);
    }

    fn finish(&mut self, out: &mut Measurements) {
        self.quantity.finish(&self.sums, out);
    }
}

/// A state for each part of the network: the whole network and each layer, started afresh at
/// every measurement.
#[derive(Clone, Debug, Default)]
pub struct PerLayer<T> {
    names: Vec<String>,
    /// The whole network's.
    pub whole: T,
    /// Each layer's, in the model's order.
    pub layers: Vec<T>,
}

impl<T: Default + Clone> PerLayer<T> {
    /// Starts a measurement of `layers`: every state back to its default.
    pub fn begin(&mut self, layers: &[LayerInfo]) {
        self.names = layers.iter().map(|l| l.name.clone()).collect();
        self.whole = T::default();
        self.layers.clear();
        self.layers.resize(layers.len(), T::default());
    }

    /// `(None, whole)`, then `(Some(layer name), its state)` for each layer: the parts a
    /// metric writes with [`Measurements::push_at`].
    pub fn parts(&self) -> impl Iterator<Item = (Option<&str>, &T)> {
        let layers = self
            .names
            .iter()
            .map(|n| Some(n.as_str()))
            .zip(&self.layers);
        std::iter::once((None, &self.whole)).chain(layers)
    }
}

impl BatchGrads {
    /// Writes the whole-network Gram matrix of the chunk (row-major `batch_size x batch_size`,
    /// the sum of the layers' [`BatchGrads::gram`], in f64) into `gram`, reusing its allocation.
    pub fn whole_gram_into(&self, gram: &mut Vec<f64>) {
        let n = self.batch_size;
        gram.clear();
        gram.resize(n * n, 0.0);
        for layer in &self.gram {
            gram.iter_mut()
                .zip(layer)
                .for_each(|(g, v)| *g += *v as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(sizes: &[usize]) -> Vec<LayerInfo> {
        sizes
            .iter()
            .enumerate()
            .map(|(l, &params)| LayerInfo::flat(format!("l{l}"), "test", params))
            .collect()
    }

    #[test]
    fn sums_follow_their_definition_over_chunks_and_measurements() {
        let grads = [
            vec![vec![1.0f32, 2.0], vec![3.0]],
            vec![vec![-1.0, 0.5], vec![2.0]],
            vec![vec![0.0, 1.0], vec![-4.0]],
        ];
        let mut acc = SumAndSqNorms::default();
        for _ in 0..2 {
            acc.begin(&layers(&[2, 1]));
            acc.accumulate(&BatchGrads::from_examples(&grads[..2]));
            acc.accumulate(&BatchGrads::from_examples(&grads[2..]));
            assert_eq!(acc.examples(), 3);
            assert_eq!(acc.names(), ["l0", "l1"]);
            // S = ([0, 3.5], [1]), Q = (5 + 1.25 + 1, 9 + 4 + 16).
            let want = SqSums {
                s2: 12.25 + 1.0,
                q: 7.25 + 29.0,
                layers: vec![(12.25, 7.25), (1.0, 29.0)],
            };
            assert_eq!(acc.sums(), want);
            let parts = [
                (None, 13.25, 36.25),
                (Some("l0"), 12.25, 7.25),
                (Some("l1"), 1.0, 29.0),
            ];
            assert_eq!(acc.parts(), parts);
        }
    }

    #[test]
    fn values_go_to_the_whole_network_or_a_layer() {
        let mut out = Measurements::new(true);
        out.push_at("q", None, 1.0);
        out.push_at("q", Some("fc1"), 2.0);
        assert_eq!(
            out.values(),
            [("q".to_string(), 1.0), ("q/fc1".to_string(), 2.0)]
        );
        let mut out = Measurements::new(false);
        out.push_at("q", Some("fc1"), 2.0);
        assert!(out.is_empty());
    }

    #[test]
    fn whole_gram_is_the_sum_of_the_layer_grams() {
        let grads = vec![
            vec![vec![1.0f32, 2.0], vec![3.0]],
            vec![vec![-1.0, 0.5], vec![2.0]],
        ];
        let mut gram = vec![7.0; 9];
        BatchGrads::from_examples(&grads).whole_gram_into(&mut gram);
        assert_eq!(gram, vec![14.0, 6.0, 6.0, 5.25]);
    }
}
