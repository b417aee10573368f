//! Every kernel against a sort-based reference, for every clip count and trim count of a batch,
//! on random values and on values with many ties.

use super::*;
use coherent_core::Rng;

/// What the per-example values look like.
#[derive(Clone, Copy, Debug)]
enum Values {
    /// Random normal.
    Normal,
    /// Drawn from a few values: ties, and zeros as behind a ReLU.
    Tied,
    /// Normal, but each example is zero on a random 60% of the units (runs of 12 coordinates,
    /// which groups of eight straddle), as per-example gradients behind a ReLU that is off;
    /// the last layer is zero for every example.
    Sparse,
}

const VALUES: [Values; 3] = [Values::Normal, Values::Tied, Values::Sparse];

/// Per-example gradients of layers of `sizes`.
fn examples(b: usize, sizes: &[usize], values: Values, seed: u64) -> Vec<Vec<Vec<f32>>> {
    let mut r = Rng::new(seed);
    (0..b)
        .map(|_| {
            let off: Vec<bool> = (0..sizes[0] / 12 + 2).map(|_| r.uniform() < 0.6).collect();
            sizes
                .iter()
                .enumerate()
                .map(|(layer, &p)| {
                    (0..p)
                        .map(|c| {
                            let x = r.normal() as f32;
                            match values {
                                Values::Normal => x,
                                Values::Tied => (x * 1.5).round().max(0.0) - 1.0,
                                Values::Sparse if layer + 1 == sizes.len() => 0.0,
                                Values::Sparse if off[c / 12] => 0.0,
                                Values::Sparse => x,
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// `reduce(sorted values, sum of |values|)` for every coordinate, against the kernel's answer,
/// to float32 rounding of the sums.
fn check(
    grads: &[Vec<Vec<f32>>],
    got: &[Vec<f32>],
    what: &str,
    reduce: impl Fn(&[f32]) -> (f32, f32),
) {
    for (l, layer) in got.iter().enumerate() {
        for (c, &g) in layer.iter().enumerate() {
            let mut v: Vec<f32> = grads.iter().map(|e| e[l][c]).collect();
            v.sort_by(f32::total_cmp);
            let (want, scale) = reduce(&v);
            let tolerance = 4e-6 * scale + 1e-7;
            assert!(
                (g - want).abs() <= tolerance,
                "{what}, layer {l} coordinate {c}: {g} vs {want}"
            );
        }
    }
}

fn zeros(sizes: &[usize]) -> Vec<Vec<f32>> {
    sizes.iter().map(|&p| vec![0.0; p]).collect()
}

/// The winsorized mean of sorted `v` clipped at ranks `lo` and `n - 1 - hi`, and the scale of
/// its rounding error.
fn winsorized_reference(v: &[f32], lo: usize, hi: usize) -> (f32, f32) {
    let n = v.len();
    let (a, b) = (v[lo], v[n - 1 - hi]);
    let sum: f32 = v.iter().map(|x| x.clamp(a, b)).sum();
    let scale: f32 = v.iter().map(|x| x.clamp(a, b).abs()).sum();
    (sum / n as f32, scale / n as f32)
}

#[test]
fn winsorization_is_exact_for_every_percentile() {
    let sizes = [300, 13, 11];
    for (b, values) in [100, 37].into_iter().flat_map(|b| VALUES.map(|v| (b, v))) {
        let grads = examples(b, &sizes, values, b as u64);
        let src = ExplicitBlocks {
            grads: grads.clone(),
        };
        for c in 0..=50 {
            let lo = nearest_rank(c as f64, b);
            let hi = b - 1 - nearest_rank(100.0 - c as f64, b);
            if lo + hi + 1 >= b {
                continue;
            }
            let mut dir = zeros(&sizes);
            winsorize_all(&src, &mut dir, lo, hi);
            let what = format!("b {b} values {values:?} c {c} (lo {lo} hi {hi})");
            check(&grads, &dir, &what, |v| winsorized_reference(v, lo, hi));
        }
        for (lo, hi) in [(0, 5), (7, 2), (4, 0)] {
            let mut dir = zeros(&sizes);
            winsorize_all(&src, &mut dir, lo, hi);
            let what = format!("b {b} values {values:?} lo {lo} hi {hi}");
            check(&grads, &dir, &what, |v| winsorized_reference(v, lo, hi));
        }
    }
}

#[test]
fn trimming_is_exact_for_every_count() {
    let sizes = [300, 13, 11];
    for (b, values) in [100, 37].into_iter().flat_map(|b| VALUES.map(|v| (b, v))) {
        let grads = examples(b, &sizes, values, 7 + b as u64);
        let src = ExplicitBlocks {
            grads: grads.clone(),
        };
        for t in 0..b.div_ceil(2) {
            let mut dir = zeros(&sizes);
            trim_all(&src, &mut dir, t);
            let what = format!("b {b} values {values:?} t {t}");
            check(&grads, &dir, &what, |v| {
                let kept = &v[t..b - t];
                let sum: f32 = kept.iter().sum();
                let scale: f32 = kept.iter().map(|x| x.abs()).sum();
                let n = kept.len() as f32;
                (sum / n, scale / n)
            });
        }
    }
}

#[test]
fn the_median_is_exact_for_every_batch_size() {
    let sizes = [20, 3, 9];
    for b in (1..=40).chain([99, 100, 101]) {
        for values in VALUES {
            let grads = examples(b, &sizes, values, 3 * b as u64);
            let src = ExplicitBlocks {
                grads: grads.clone(),
            };
            let mut dir = zeros(&sizes);
            median_all(&src, &mut dir);
            let what = format!("b {b} values {values:?}");
            check(&grads, &dir, &what, |v| {
                let m = if b % 2 == 1 {
                    v[b / 2]
                } else {
                    (v[b / 2 - 1] + v[b / 2]) / 2.0
                };
                (m, m.abs())
            });
        }
    }
}

#[test]
fn weighted_sums_are_exact() {
    let sizes = [300, 13, 11];
    let grads = examples(23, &sizes, Values::Normal, 5);
    let src = ExplicitBlocks {
        grads: grads.clone(),
    };
    let weights: Vec<f32> = (0..23).map(|i| 0.1 * i as f32 - 1.0).collect();
    let mut dir = zeros(&sizes);
    weighted_sum_all(&src, &mut dir, &weights);
    for (l, layer) in dir.iter().enumerate() {
        for (c, &g) in layer.iter().enumerate() {
            let want: f32 = grads.iter().zip(&weights).map(|(e, w)| w * e[l][c]).sum();
            assert!((g - want).abs() < 1e-5, "layer {l} coordinate {c}");
        }
    }
}

#[test]
fn every_kernel_gives_the_same_order_statistics() {
    let sizes = [300, 13, 11];
    let kernels = plan::Kernel::supported();
    for values in VALUES {
        let grads = examples(100, &sizes, values, 17);
        let src = ExplicitBlocks {
            grads: grads.clone(),
        };
        let statistics = [
            RankStatistic::Winsorized { lo: 8, hi: 8 },
            RankStatistic::Winsorized { lo: 1, hi: 30 },
            RankStatistic::Trimmed { t: 20 },
            RankStatistic::Median,
        ];
        for statistic in statistics {
            let results: Vec<Vec<Vec<f32>>> = kernels
                .iter()
                .map(|&kernel| {
                    let mut dir = zeros(&sizes);
                    sorted::sorted_groups_on(kernel, &src, &mut dir, statistic);
                    dir
                })
                .collect();
            let what = format!("{values:?} {statistic:?} on {:?}", kernels[0]);
            check(&grads, &results[0], &what, |v| match statistic {
                RankStatistic::Winsorized { lo, hi } => winsorized_reference(v, lo, hi),
                RankStatistic::Trimmed { t } => {
                    let kept = &v[t..v.len() - t];
                    let n = kept.len() as f32;
                    let scale: f32 = kept.iter().map(|x| x.abs()).sum();
                    (kept.iter().sum::<f32>() / n, scale / n)
                }
                RankStatistic::Median => {
                    let m = (v[49] + v[50]) / 2.0;
                    (m, m.abs())
                }
            });
            for (kernel, result) in kernels.iter().zip(&results) {
                assert_eq!(result, &results[0], "{values:?} {statistic:?}: {kernel:?}");
            }
        }
    }
}
