//! [`BatchGrads`] built from explicit per-example gradient vectors: the slow reference that
//! metric and aggregator tests feed to the code they check, and the helpers those tests share.
//!
//! A model computes these quantities from one backward pass without ever forming `g_i`; here
//! each one is the plain loop over examples and coordinates of its definition (accumulated in
//! f64, stored in f32 like a model's), so a test states its inputs as vectors and compares the
//! plugin's answer with its own brute-force computation on the same vectors.
//! [`measure_examples`] streams such vectors through a metric as the runner would,
//! [`measure_twice`] also checks that a metric's state does not leak from one measurement into
//! the next, [`random_examples`] and [`orthogonal_examples`] draw or build inputs (and
//! [`rescaled_examples`] rescales them), [`whole_and_layers`] gives the vectors a brute-force
//! reference reads for the whole network and for each layer, and [`dot`] is its inner product.
//! Measured values read like a map's: `ms["coherence"]`. For aggregators, [`ExplicitBlocks`]
//! serves such vectors block by block and [`aggregate_examples`] runs an aggregator on them as
//! the training loop would.

use crate::{
    Batch, BatchGrads, CoherenceMetric, GradientAggregator, Gradients, LayerInfo, Measurements,
    PerExampleBlocks, Rng,
};

/// Per-example gradients `grads[i][l]`: example `i`, layer `l`.
pub type Examples = Vec<Vec<Vec<f32>>>;

/// One measurement of `metric` on the per-example gradients `grads[i][l]`, streamed as the
/// runner streams a sample: [`CoherenceMetric::begin`] with layers `l0`, `l1`, ... of the
/// examples' sizes, [`CoherenceMetric::accumulate`] once per `chunk` examples (with
/// [`BatchGrads::from_examples`] and the chunk's `labels`; no labels: a regression), then
/// [`CoherenceMetric::finish`], keeping per-layer values.
///
/// # Panics
///
/// If `grads` is empty or its examples disagree on their layers, if `chunk` is 0, or if
/// `labels` is neither empty nor one per example.
pub fn measure_examples(
    metric: &mut dyn CoherenceMetric,
    grads: &[Vec<Vec<f32>>],
    chunk: usize,
    labels: &[u32],
) -> Measurements {
    let mut out = Measurements::new(true);
    stream(metric, grads, chunk, labels, &mut out);
    out
}

/// [`measure_examples`] twice with the same `metric`, the second time without per-layer
/// values; returns the first measurement after checking that the second is the first without
/// its per-layer values (`quantity/l<k>`). So the metric's state is reused without leaking
/// from one measurement into the next, and every per-layer value goes through
/// [`Measurements::push_layer`], for the runner to keep or drop.
///
/// # Panics
///
/// As [`measure_examples`], and if the second measurement differs.
pub fn measure_twice(
    metric: &mut dyn CoherenceMetric,
    grads: &[Vec<Vec<f32>>],
    chunk: usize,
    labels: &[u32],
) -> Measurements {
    let first = measure_examples(metric, grads, chunk, labels);
    let mut second = Measurements::new(false);
    stream(metric, grads, chunk, labels, &mut second);
    let layers = example_layers(grads);
    let of_a_layer = |name: &str| {
        name.rsplit_once('/')
            .is_some_and(|(_, layer)| layers.iter().any(|l| l.name == layer))
    };
    let whole: Vec<(String, f64)> = first
        .values()
        .iter()
        .filter(|(name, _)| !of_a_layer(name))
        .cloned()
        .collect();
    assert_eq!(
        second.values(),
        whole,
        "measured again without per-layer values"
    );
    first
}

fn stream(
    metric: &mut dyn CoherenceMetric,
    grads: &[Vec<Vec<f32>>],
    chunk: usize,
    labels: &[u32],
    out: &mut Measurements,
) {
    assert!(
        labels.is_empty() || labels.len() == grads.len(),
        "one label per example"
    );
    metric.begin(&example_layers(grads));
    for (k, part) in grads.chunks(chunk).enumerate() {
        let labels = labels.get(k * chunk..k * chunk + part.len()).unwrap_or(&[]);
        let batch = Batch {
            labels: labels.to_vec(),
            regression: labels.is_empty(),
            ..Batch::default()
        };
        metric.accumulate(&BatchGrads::from_examples(part), &batch);
    }
    metric.finish(out);
}

/// A measured value by name, for tests and for values known to be there.
///
/// # Panics
///
/// If `name` was not measured (the message lists what was).
impl std::ops::Index<&str> for Measurements {
    type Output = f64;

    fn index(&self, name: &str) -> &f64 {
        match self.values().iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => v,
            None => {
                let names: Vec<&str> = self.values().iter().map(|(n, _)| n.as_str()).collect();
                panic!("`{name}` was not measured; the values are {names:?}")
            }
        }
    }
}

/// The layers `l0`, `l1`, ... (kind `test`) of the per-example gradients `grads[i][l]`, sized
/// like the first example's.
///
/// # Panics
///
/// If `grads` is empty.
pub fn example_layers(grads: &[Vec<Vec<f32>>]) -> Vec<LayerInfo> {
    grads[0]
        .iter()
        .enumerate()
        .map(|(l, g)| LayerInfo::flat(format!("l{l}"), "test", g.len()))
        .collect()
}

/// `m` examples of per-example gradients with layers of `sizes` parameters, each value a
/// standard normal draw of `Rng::new(seed)` plus `offset` (so that the examples agree a little).
pub fn random_examples(m: usize, sizes: &[usize], seed: u64, offset: f32) -> Examples {
    let mut rng = Rng::new(seed);
    (0..m)
        .map(|_| {
            sizes
                .iter()
                .map(|&n| (0..n).map(|_| rng.normal() as f32 + offset).collect())
                .collect()
        })
        .collect()
}

/// `m = norms.len()` pairwise orthogonal examples of one layer of `m` parameters: example `i`
/// is `norms[i] e_i`.
pub fn orthogonal_examples(norms: &[f32]) -> Examples {
    (0..norms.len())
        .map(|i| {
            let mut g = vec![0.0; norms.len()];
            g[i] = norms[i];
            vec![g]
        })
        .collect()
}

/// The examples `grads[i][l]` with example `i` multiplied by `factor(i)`.
pub fn rescaled_examples(grads: &[Vec<Vec<f32>>], factor: impl Fn(usize) -> f32) -> Examples {
    grads
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let c = factor(i);
            g.iter()
                .map(|layer| layer.iter().map(|v| v * c).collect())
                .collect()
        })
        .collect()
}

/// The gradients a metric reads for the whole network and for each layer, with the suffix its
/// quantities take there: `("", g_i)` (every example's layers concatenated), then
/// `("/l0", g_i restricted to layer 0)`, `("/l1", ...)`, ...
pub fn whole_and_layers(grads: &[Vec<Vec<f32>>]) -> Vec<(String, Vec<Vec<f32>>)> {
    let whole = grads.iter().map(|g| g.concat()).collect();
    let layers = (0..grads.first().map_or(0, Vec::len)).map(|l| {
        (
            format!("/l{l}"),
            grads.iter().map(|g| g[l].clone()).collect(),
        )
    });
    std::iter::once((String::new(), whole))
        .chain(layers)
        .collect()
}

/// `a . b`, accumulated in f64: the brute-force inner product of two gradients.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

impl BatchGrads {
    /// What a model returns for the per-example gradients `grads[i][l]` (example `i`, layer
    /// `l`), with every per-example quantity filled in: `sum`, `sq_norms`, `coord_sum_sq`,
    /// `gram` and `per_example` (no `group_sums`). Losses are 0 and every prediction is
    /// counted correct.
    ///
    /// # Panics
    ///
    /// If `grads` is empty or the examples disagree on the number or the sizes of layers.
    pub fn from_examples(grads: &[Vec<Vec<f32>>]) -> BatchGrads {
        let m = grads.len();
        assert!(m > 0, "at least one example");
        let sizes: Vec<usize> = grads[0].iter().map(Vec::len).collect();
        for g in grads {
            let got: Vec<usize> = g.iter().map(Vec::len).collect();
            assert_eq!(got, sizes, "every example has the same layers");
        }
        let by_coord = |l: usize, f: &dyn Fn(f32) -> f64| -> Vec<f32> {
            (0..sizes[l])
                .map(|k| grads.iter().map(|g| f(g[l][k])).sum::<f64>() as f32)
                .collect()
        };
        let layers = 0..sizes.len();
        BatchGrads {
            batch_size: m,
            losses: vec![0.0; m],
            correct: vec![true; m],
            sum: layers.clone().map(|l| by_coord(l, &|v| v as f64)).collect(),
            sq_norms: layers
                .clone()
                .map(|l| grads.iter().map(|g| dot(&g[l], &g[l]) as f32).collect())
                .collect(),
            coord_sum_sq: layers
                .clone()
                .map(|l| by_coord(l, &|v| v as f64 * v as f64))
                .collect(),
            gram: layers
                .clone()
                .map(|l| {
                    let mut gram = Vec::with_capacity(m * m);
                    for gi in grads {
                        gram.extend(grads.iter().map(|gj| dot(&gi[l], &gj[l]) as f32));
                    }
                    gram
                })
                .collect(),
            per_example: layers
                .map(|l| grads.iter().flat_map(|g| g[l].iter().copied()).collect())
                .collect(),
            group_sums: vec![],
            subset_sums: vec![],
        }
    }
}

/// Per-example gradients held explicitly, `grads[i][layer][coordinate]`, served block by block
/// as a model serves them ([`PerExampleBlocks`]).
#[derive(Clone, Debug, Default)]
pub struct ExplicitBlocks {
    /// `grads[i][layer][coordinate]`.
    pub grads: Vec<Vec<Vec<f32>>>,
}

impl PerExampleBlocks for ExplicitBlocks {
    fn batch(&self) -> usize {
        self.grads.len()
    }
    fn layers(&self) -> usize {
        self.grads.first().map_or(0, Vec::len)
    }
    fn layer_params(&self, layer: usize) -> usize {
        self.grads[0][layer].len()
    }
    fn block(&self, layer: usize, coords: std::ops::Range<usize>, out: &mut [f32]) {
        let b = self.batch();
        for (c, col) in coords.zip(out.chunks_exact_mut(b)) {
            for (i, x) in col.iter_mut().enumerate() {
                *x = self.grads[i][layer][c];
            }
        }
    }
}

/// The direction `aggregator` makes of the per-example gradients `grads[i][l]`: the batch's
/// quantities of [`BatchGrads::from_examples`] (with `groups` group sums, for aggregators that
/// ask for them) and the examples block by block, as the training loop hands them over (without
/// [`GradientAggregator::finish`]).
///
/// # Panics
/// If `grads` is empty or its examples disagree on their layers.
pub fn aggregate_examples(
    aggregator: &mut dyn GradientAggregator,
    grads: &[Vec<Vec<f32>>],
    groups: usize,
) -> Vec<Vec<f32>> {
    let mut batch = BatchGrads::from_examples(grads);
    let m = grads.len();
    batch.group_sums = (0..groups.min(m))
        .map(|g| {
            let members = &grads[BatchGrads::group_range(g, groups.min(m), m)];
            BatchGrads::from_examples(members).sum
        })
        .collect();
    let blocks = ExplicitBlocks {
        grads: grads.to_vec(),
    };
    let mut direction: Vec<Vec<f32>> = grads[0].iter().map(|l| vec![0.0; l.len()]).collect();
    let g = Gradients {
        batch: &batch,
        blocks: Some(&blocks),
    };
    aggregator.aggregate(&g, &mut direction);
    direction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quantity_follows_its_definition() {
        let grads = vec![
            vec![vec![1.0f32, 2.0], vec![3.0]],
            vec![vec![-1.0, 0.5], vec![2.0]],
        ];
        let b = BatchGrads::from_examples(&grads);
        assert_eq!(b.batch_size, 2);
        assert_eq!(b.sum, vec![vec![0.0, 2.5], vec![5.0]]);
        assert_eq!(b.sq_norms, vec![vec![5.0, 1.25], vec![9.0, 4.0]]);
        assert_eq!(b.coord_sum_sq, vec![vec![2.0, 4.25], vec![13.0]]);
        assert_eq!(
            b.gram,
            vec![vec![5.0, 0.0, 0.0, 1.25], vec![9.0, 6.0, 6.0, 4.0]]
        );
        assert_eq!(
            b.per_example,
            vec![vec![1.0, 2.0, -1.0, 0.5], vec![3.0, 2.0]]
        );
        assert_eq!(b.example_sq_norm(0), 14.0);
    }

    #[test]
    fn examples_are_built_rescaled_and_split_as_documented() {
        let grads = orthogonal_examples(&[1.0, 2.0]);
        assert_eq!(grads, vec![vec![vec![1.0, 0.0]], vec![vec![0.0, 2.0]]]);
        assert_eq!(dot(&grads[1][0], &grads[1][0]), 4.0);
        let grads = vec![vec![vec![1.0f32, 2.0], vec![3.0]]; 2];
        let scaled = rescaled_examples(&grads, |i| i as f32 + 1.0);
        assert_eq!(scaled[1], vec![vec![2.0, 4.0], vec![6.0]]);
        let parts = whole_and_layers(&scaled);
        let suffixes: Vec<&str> = parts.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(suffixes, ["", "/l0", "/l1"]);
        assert_eq!(parts[0].1[1], vec![2.0, 4.0, 6.0]);
        assert_eq!(parts[2].1, vec![vec![3.0], vec![6.0]]);
    }

    /// Sums each layer's coordinates; when `leaky`, on top of the earlier measurements' sums.
    #[derive(Default)]
    struct Sums {
        names: Vec<String>,
        sums: Vec<f64>,
        leaky: bool,
    }

    impl CoherenceMetric for Sums {
        fn needs(&self) -> crate::GradRequest {
            crate::GradRequest::SUM
        }
        fn begin(&mut self, layers: &[LayerInfo]) {
            self.names = layers.iter().map(|l| l.name.clone()).collect();
            if !self.leaky {
                self.sums = vec![0.0; layers.len()];
            }
            self.sums.resize(layers.len(), 0.0);
        }
        fn accumulate(&mut self, chunk: &BatchGrads, _batch: &Batch) {
            for (s, layer) in self.sums.iter_mut().zip(&chunk.sum) {
                *s += layer.iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        fn finish(&mut self, out: &mut Measurements) {
            out.push("total", self.sums.iter().sum());
            for (name, s) in self.names.iter().zip(&self.sums) {
                out.push_layer("sum", name, *s);
            }
        }
    }

    #[test]
    fn measuring_twice_catches_state_leaking_between_measurements() {
        let grads = random_examples(5, &[3, 2], 1, 0.0);
        let ms = measure_twice(&mut Sums::default(), &grads, 2, &[]);
        let want: f64 = grads.iter().flatten().flatten().map(|&v| v as f64).sum();
        assert!((ms["total"] - want).abs() < 1e-5);
        assert!((ms["sum/l0"] + ms["sum/l1"] - want).abs() < 1e-5);
        let leaky = std::panic::catch_unwind(|| {
            let mut metric = Sums {
                leaky: true,
                ..Sums::default()
            };
            measure_twice(&mut metric, &grads, 2, &[])
        });
        assert!(leaky.is_err());
    }

    #[test]
    #[should_panic(expected = "`coherence` was not measured")]
    fn a_missing_value_is_named() {
        let _ = Measurements::default()["coherence"];
    }
}
