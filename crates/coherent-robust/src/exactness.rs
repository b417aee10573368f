//! Every kernel against a sort-based reference, for every clip count and trim count of a batch,
//! on random values and on values with many ties.

use super::*;
use coherent_core::Rng;

/// Per-example gradients of two layers (`sizes`), random normal or drawn from a few values
/// (ties, zeros as behind a ReLU).
fn examples(b: usize, sizes: &[usize], tied: bool, seed: u64) -> Vec<Vec<Vec<f32>>> {
    let mut r = Rng::new(seed);
    (0..b)
        .map(|_| {
            sizes
                .iter()
                .map(|&p| {
                    (0..p)
                        .map(|_| {
                            let x = r.normal() as f32;
                            if tied {
                                (x * 1.5).round().max(0.0) - 1.0
                            } else {
                                x
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
    let sizes = [300, 13];
    for (b, tied) in [(100, false), (100, true), (37, false), (37, true)] {
        let grads = examples(b, &sizes, tied, b as u64);
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
            let what = format!("b {b} tied {tied} c {c} (lo {lo} hi {hi})");
            check(&grads, &dir, &what, |v| winsorized_reference(v, lo, hi));
        }
        for (lo, hi) in [(0, 5), (7, 2), (4, 0)] {
            let mut dir = zeros(&sizes);
            winsorize_all(&src, &mut dir, lo, hi);
            let what = format!("b {b} tied {tied} lo {lo} hi {hi}");
            check(&grads, &dir, &what, |v| winsorized_reference(v, lo, hi));
        }
    }
}

#[test]
fn trimming_is_exact_for_every_count() {
    let sizes = [300, 13];
    for (b, tied) in [(100, false), (100, true), (37, false), (37, true)] {
        let grads = examples(b, &sizes, tied, 7 + b as u64);
        let src = ExplicitBlocks {
            grads: grads.clone(),
        };
        for t in 0..b.div_ceil(2) {
            let mut dir = zeros(&sizes);
            trim_all(&src, &mut dir, t);
            let what = format!("b {b} tied {tied} t {t}");
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
    let sizes = [20, 3];
    for b in (1..=40).chain([99, 100, 101]) {
        for tied in [false, true] {
            let grads = examples(b, &sizes, tied, 3 * b as u64);
            let src = ExplicitBlocks {
                grads: grads.clone(),
            };
            let mut dir = zeros(&sizes);
            median_all(&src, &mut dir);
            let what = format!("b {b} tied {tied}");
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
    let sizes = [300, 13];
    let grads = examples(23, &sizes, false, 5);
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
