//! [`BatchGrads`] built from explicit per-example gradient vectors: the slow reference that
//! metric and aggregator tests feed to the code they check.
//!
//! A model computes these quantities from one backward pass without ever forming `g_i`; here
//! each one is the plain loop over examples and coordinates of its definition (accumulated in
//! f64, stored in f32 like a model's), so a test states its inputs as vectors and compares the
//! plugin's answer with its own brute-force computation on the same vectors.
//! [`measure_examples`] streams such vectors through a metric as the runner would, and
//! [`random_examples`] draws them.

use crate::{Batch, BatchGrads, CoherenceMetric, LayerInfo, Measurements, Rng};

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
    let mut out = Measurements::new(true);
    metric.finish(&mut out);
    out
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
        .map(|(l, g)| LayerInfo {
            name: format!("l{l}"),
            kind: "test",
            params: g.len(),
        })
        .collect()
}

/// `m` examples of per-example gradients with layers of `sizes` parameters, each value a
/// standard normal draw of `Rng::new(seed)` plus `offset` (so that the examples agree a little).
pub fn random_examples(m: usize, sizes: &[usize], seed: u64, offset: f32) -> Vec<Vec<Vec<f32>>> {
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
        let dot = |a: &[f32], b: &[f32]| -> f64 {
            a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
        };
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
}
