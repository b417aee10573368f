//! The kernels of the suppression strategies: coordinate-wise reductions of per-example
//! gradients, written once and shared by the aggregator plugins.
//!
//! Every kernel walks the parameters in cache-sized blocks on all threads: a block of
//! per-example values is produced by the model ([`PerExampleBlocks`]), reduced while it is in
//! cache, and only the result is written. Three ways to reduce it:
//! - [`sorted_groups`]: the batch dimension of sixteen coordinates sorted at once, one per
//!   SIMD lane, at a cost that does not depend on the rank asked for (winsorization, trimming,
//!   the median);
//! - ranked lists of the one or two largest and smallest values kept in registers, in one pass
//!   (winsorization at `c = 1`, trimming of one or two per side), where that is faster;
//! - [`coordinatewise`]: any reduction of one coordinate's values at a time; the order
//!   statistics below ([`winsorized_mean`], [`trimmed_mean`], [`median`]) run on it in linear
//!   time (`select_nth_unstable`) for batches too small for the others, and are the references
//!   the tests check the fast kernels against.

use aligned::LineBuffer;
use coherent_core::PerExampleBlocks;
use rayon::prelude::*;

mod aligned;
mod bitonic;
mod plan;
mod ranked;
mod sorted;
pub use plan::{network, Lanes, SortPlan, LANES};
pub use ranked::{RankStatistic, Ranked};
pub use sorted::{sorted_groups, GroupStatistic};

/// Coordinates per block: `BLOCK x batch` values stay in the L2 cache.
pub const BLOCK: usize = 256;

/// Writes `reduce(values of coordinate c over the examples)` into `direction[l][c]` for every
/// layer `l` and coordinate `c`. `reduce` may reorder its slice.
pub fn coordinatewise(
    src: &dyn PerExampleBlocks,
    direction: &mut [Vec<f32>],
    reduce: impl Fn(&mut [f32]) -> f32 + Sync,
) {
    let b = src.batch();
    for (layer, out) in direction.iter_mut().enumerate() {
        out.par_chunks_mut(BLOCK)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (k, chunk)| {
                let start = k * BLOCK;
                scratch.resize(chunk.len() * b, 0.0);
                src.block(layer, start..start + chunk.len(), scratch);
                for (o, col) in chunk.iter_mut().zip(scratch.chunks_exact_mut(b)) {
                    *o = reduce(col);
                }
            });
    }
}

/// Writes `sum_i weights[i] g_i` into `direction` (one slice per layer): a weighted batch
/// gradient. A layer that can form it directly does
/// ([`PerExampleBlocks::weighted_sum`]: for a dense layer one matrix product, nothing
/// materialised); the others are read block by block as example rows, each row added once (a
/// vectorised `axpy`), on all threads.
pub fn weighted_sum_all(src: &dyn PerExampleBlocks, direction: &mut [Vec<f32>], weights: &[f32]) {
    let b = src.batch();
    assert_eq!(weights.len(), b, "one weight per example");
    for (layer, out) in direction.iter_mut().enumerate() {
        if src.weighted_sum(layer, weights, out) {
            continue;
        }
        out.par_chunks_mut(BLOCK)
            .enumerate()
            .for_each_init(Vec::new, |rows, (k, chunk)| {
                let (start, len) = (k * BLOCK, chunk.len());
                rows.resize(b * len, 0.0);
                src.block_rows(layer, start..start + len, rows);
                chunk.fill(0.0);
                for (row, &w) in rows.chunks_exact(len).zip(weights) {
                    chunk.iter_mut().zip(row).for_each(|(o, v)| *o += w * v);
                }
            });
    }
}

/// Longest ranked list per side (values kept at each end) that [`winsorize_all`] and
/// [`trim_all`] keep in registers; longer ones sort the batch dimension ([`sorted_groups`]),
/// whose cost does not depend on the count and is lower from three values per side on
/// (measured with `coherent bench --network aggregators`).
pub const MAX_LIST: usize = 2;

/// The winsorized mean of every coordinate (clip to the `lo`-th smallest and `hi`-th largest
/// value of the coordinate, 0-based from each end, then average), for all layers.
///
/// For `lo = hi` up to [`MAX_LIST`]` - 1`, one branch-free pass over the examples, many
/// coordinates at a time: per coordinate it keeps the running sum and the `lo + 1` smallest
/// and `hi + 1` largest values seen (insertion networks of `min`/`max`, in registers), then
/// `sum - (lo smallest) - (hi largest) + lo * (lo-th smallest) + hi * (hi-th largest)`.
/// Larger or unequal clip counts sort the batch dimension instead ([`sorted_groups`]); tiny
/// batches (fewer than `lo + hi + 2` examples) fall back to [`winsorized_mean`] per coordinate.
pub fn winsorize_all(src: &dyn PerExampleBlocks, direction: &mut [Vec<f32>], lo: usize, hi: usize) {
    let b = src.batch();
    if b < lo + hi + 2 {
        coordinatewise(src, direction, |v| winsorized_mean(v, lo, hi));
        return;
    }
    if lo != hi || lo + 1 > MAX_LIST {
        sorted_groups(src, direction, RankStatistic::Winsorized { lo, hi });
        return;
    }
    extremes(src, direction, lo, hi, |s, c| {
        let mut total = s.sum[c];
        total -= s.top[..hi].iter().map(|t| t[c]).sum::<f32>();
        total -= s.bottom[..lo].iter().map(|t| t[c]).sum::<f32>();
        total += hi as f32 * s.top[hi][c] + lo as f32 * s.bottom[lo][c];
        total / b as f32
    });
}

/// The trimmed mean of every coordinate (drop the `t` largest and `t` smallest values, average
/// the rest), for all layers, by the same methods as [`winsorize_all`].
pub fn trim_all(src: &dyn PerExampleBlocks, direction: &mut [Vec<f32>], t: usize) {
    let b = src.batch();
    assert!(2 * t < b, "cannot trim {t} from each side of {b} values");
    if t == 0 || b < 2 * t + 2 {
        coordinatewise(src, direction, |v| trimmed_mean(v, t));
        return;
    }
    if t > MAX_LIST {
        sorted_groups(src, direction, RankStatistic::Trimmed { t });
        return;
    }
    extremes(src, direction, t - 1, t - 1, |s, c| {
        let dropped: f32 = s.top.iter().chain(&s.bottom).map(|r| r[c]).sum();
        (s.sum[c] - dropped) / (b - 2 * t) as f32
    });
}

/// The median of every coordinate (the mean of the two middle values for an even batch), for
/// all layers, by sorting the batch dimension ([`sorted_groups`]): as [`median`] per
/// coordinate, without a selection per coordinate.
pub fn median_all(src: &dyn PerExampleBlocks, direction: &mut [Vec<f32>]) {
    sorted_groups(src, direction, RankStatistic::Median);
}

/// One pass over the examples of every block keeping, per coordinate, the sum and the `lo + 1`
/// smallest and `hi + 1` largest values; `finish(scratch, c)` turns them into the result.
fn extremes(
    src: &dyn PerExampleBlocks,
    direction: &mut [Vec<f32>],
    lo: usize,
    hi: usize,
    finish: impl Fn(&Scratch, usize) -> f32 + Sync,
) {
    let b = src.batch();
    for (layer, out) in direction.iter_mut().enumerate() {
        out.par_chunks_mut(BLOCK).enumerate().for_each_init(
            || Scratch::new(b, lo, hi),
            |s, (k, chunk)| {
                let (start, len) = (k * BLOCK, chunk.len());
                src.block_rows(layer, start..start + len, s.rows.values(b * len));
                s.reset(len);
                accumulate(s, len);
                for (c, o) in chunk.iter_mut().enumerate() {
                    *o = finish(s, c);
                }
            },
        );
    }
}

/// Runs every example of the block through the running sums and the insertion networks, with
/// AVX2 when the processor has it (the project builds for baseline x86-64, so the wide
/// instructions are chosen at run time).
fn accumulate(s: &mut Scratch, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2, checked just above.
        unsafe { accumulate_avx2(s, len) };
        return;
    }
    accumulate_any(s, len);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(s: &mut Scratch, len: usize) {
    accumulate_any(s, len);
}

#[inline(always)]
fn accumulate_any(s: &mut Scratch, len: usize) {
    match (s.top.len(), s.bottom.len()) {
        (1, 1) => lanes::<1, 1>(s, len),
        (2, 2) => lanes::<2, 2>(s, len),
        (top, bottom) => unreachable!("ranked lists of {top} and {bottom}: at most {MAX_LIST}"),
    }
}

/// [`accumulate_any`] for `T` largest and `U` smallest values, eight coordinates at a time:
/// the running sum and both ranked lists stay in registers across all the examples.
#[inline(always)]
fn lanes<const T: usize, const U: usize>(s: &mut Scratch, len: usize) {
    let b = s.batch;
    let rows = s.rows.filled(b * len);
    let full = len / 8 * 8;
    for g in (0..full).step_by(8) {
        let mut sum = [0.0f32; 8];
        let mut top = [[f32::NEG_INFINITY; 8]; T];
        let mut bottom = [[f32::INFINITY; 8]; U];
        for i in 0..b {
            let v: [f32; 8] = rows[i * len + g..i * len + g + 8]
                .try_into()
                .expect("eight lanes");
            for l in 0..8 {
                sum[l] += v[l];
            }
            let mut x = v;
            for r in top.iter_mut() {
                exchange::<true>(r, &mut x);
            }
            let mut y = v;
            for r in bottom.iter_mut() {
                exchange::<false>(r, &mut y);
            }
        }
        s.sum[g..g + 8].copy_from_slice(&sum);
        for (r, t) in s.top.iter_mut().zip(&top) {
            r[g..g + 8].copy_from_slice(t);
        }
        for (r, u) in s.bottom.iter_mut().zip(&bottom) {
            r[g..g + 8].copy_from_slice(u);
        }
    }
    // the last coordinates of the block, one at a time
    for c in full..len {
        for i in 0..b {
            let v = rows[i * len + c];
            s.sum[c] += v;
            let mut x = v;
            for r in s.top.iter_mut() {
                if r[c] < x {
                    std::mem::swap(&mut r[c], &mut x);
                }
            }
            let mut y = v;
            for r in s.bottom.iter_mut() {
                if r[c] > y {
                    std::mem::swap(&mut r[c], &mut y);
                }
            }
        }
    }
}

/// Per-thread buffers of [`winsorize_all`].
struct Scratch {
    /// The block's values, example by example, from the start of a cache line.
    rows: LineBuffer,
    batch: usize,
    sum: Vec<f32>,
    top: Vec<Vec<f32>>,
    bottom: Vec<Vec<f32>>,
}

impl Scratch {
    fn new(b: usize, lo: usize, hi: usize) -> Scratch {
        Scratch {
            rows: LineBuffer::default(),
            batch: b,
            sum: vec![0.0; BLOCK],
            top: vec![vec![0.0; BLOCK]; hi + 1],
            bottom: vec![vec![0.0; BLOCK]; lo + 1],
        }
    }

    fn reset(&mut self, len: usize) {
        self.sum[..len].fill(0.0);
        self.top
            .iter_mut()
            .for_each(|t| t[..len].fill(f32::NEG_INFINITY));
        self.bottom
            .iter_mut()
            .for_each(|t| t[..len].fill(f32::INFINITY));
    }
}

/// One step of an insertion network on eight lanes: `r` keeps the better of `r` and `x`, `x`
/// carries the other on. Written on fixed-size arrays so that it compiles to vector min/max.
#[inline(always)]
fn exchange<const LARGEST: bool>(r: &mut [f32; 8], x: &mut [f32; 8]) {
    for l in 0..8 {
        let (a, v) = (r[l], x[l]);
        let keep = if LARGEST { a > v } else { a < v };
        r[l] = if keep { a } else { v };
        x[l] = if keep { v } else { a };
    }
}

fn order(a: &f32, b: &f32) -> std::cmp::Ordering {
    a.total_cmp(b)
}

/// The mean of `values` after clipping them to their `lo`-th smallest and `hi`-th largest
/// (0-based) values: winsorization. `lo = hi = 0` is the plain mean.
pub fn winsorized_mean(values: &mut [f32], lo: usize, hi: usize) -> f32 {
    let n = values.len();
    let (lo, hi) = (lo.min(n - 1), hi.min(n - 1));
    let low = *values.select_nth_unstable_by(lo, order).1;
    let high = *values.select_nth_unstable_by(n - 1 - hi, order).1;
    let (low, high) = (low.min(high), high.max(low));
    values.iter().map(|v| v.clamp(low, high)).sum::<f32>() / n as f32
}

/// The median (the mean of the two middle values for an even count).
pub fn median(values: &mut [f32]) -> f32 {
    let n = values.len();
    let (left, mid, _) = values.select_nth_unstable_by(n / 2, order);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let below = left.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (below + mid) / 2.0
    }
}

/// The mean of `values` without their `b` smallest and `b` largest (`2 b < len`).
pub fn trimmed_mean(values: &mut [f32], b: usize) -> f32 {
    let n = values.len();
    assert!(2 * b < n, "cannot trim {b} from each side of {n} values");
    if b > 0 {
        values.select_nth_unstable_by(b, order);
        values[b..].select_nth_unstable_by(n - 2 * b - 1, order);
    }
    values[b..n - b].iter().sum::<f32>() / (n - 2 * b) as f32
}

/// Index of `q` percent of the way through `n` sorted values, rounded as NumPy's
/// `percentile(..., method="nearest")` does (half to even).
pub fn nearest_rank(q: f64, n: usize) -> usize {
    let x = q / 100.0 * (n - 1) as f64;
    let floor = x.floor();
    let frac = x - floor;
    let r = if (frac - 0.5).abs() < 1e-12 {
        if (floor as usize).is_multiple_of(2) {
            floor
        } else {
            floor + 1.0
        }
    } else {
        x.round()
    };
    (r as usize).min(n - 1)
}

/// Per-example gradients held explicitly, for tests (defined in `coherent-core`).
pub use coherent_core::explicit::ExplicitBlocks;

#[cfg(test)]
mod exactness;

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &[f32]) -> Vec<f32> {
        let mut s = v.to_vec();
        s.sort_by(f32::total_cmp);
        s
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut r = coherent_core::Rng::new(seed);
        (0..n).map(|_| r.normal() as f32).collect()
    }

    #[test]
    fn order_statistics_match_sorting() {
        for n in [1, 2, 3, 7, 10, 100, 101] {
            let v = values(n, n as u64);
            let s = sorted(&v);
            let want_median = if n % 2 == 1 {
                s[n / 2]
            } else {
                (s[n / 2 - 1] + s[n / 2]) / 2.0
            };
            assert!((median(&mut v.clone()) - want_median).abs() < 1e-6, "n {n}");
            for b in 0..n.div_ceil(2) {
                if 2 * b < n {
                    let want: f32 = s[b..n - b].iter().sum::<f32>() / (n - 2 * b) as f32;
                    assert!(
                        (trimmed_mean(&mut v.clone(), b) - want).abs() < 1e-5,
                        "n {n} b {b}"
                    );
                }
                let (lo, hi) = (s[b.min(n - 1)], s[n - 1 - b.min(n - 1)]);
                let want: f32 = v
                    .iter()
                    .map(|x| x.clamp(lo.min(hi), hi.max(lo)))
                    .sum::<f32>()
                    / n as f32;
                assert!(
                    (winsorized_mean(&mut v.clone(), b, b) - want).abs() < 1e-5,
                    "n {n} k {b}"
                );
            }
            let mean: f32 = v.iter().sum::<f32>() / n as f32;
            assert!((winsorized_mean(&mut v.clone(), 0, 0) - mean).abs() < 1e-5);
        }
    }

    #[test]
    fn nearest_rank_follows_numpy() {
        // numpy.percentile(range(100), [0, 1, 2, 4, 8, 92, 96, 98, 99, 100], method="nearest")
        let got: Vec<usize> = [0.0, 1.0, 2.0, 4.0, 8.0, 92.0, 96.0, 98.0, 99.0, 100.0]
            .iter()
            .map(|&q| nearest_rank(q, 100))
            .collect();
        assert_eq!(got, vec![0, 1, 2, 4, 8, 91, 95, 97, 98, 99]);
        // half-way cases round to even: 50% of 4 values is index 1.5 -> 2; 50% of 6 is 2.5 -> 2
        assert_eq!((nearest_rank(50.0, 4), nearest_rank(50.0, 6)), (2, 2));
    }

    #[test]
    fn one_pass_winsorization_matches_the_order_statistics() {
        let mut r = coherent_core::Rng::new(8);
        for (b, lo, hi) in [
            (100, 2, 2),
            (100, 0, 0),
            (13, 1, 3),
            (9, 4, 3),
            (6, 3, 3),
            (100, 20, 20),
        ] {
            let mut grads: Vec<Vec<Vec<f32>>> = (0..b)
                .map(|_| {
                    [600usize, 5]
                        .iter()
                        .map(|&p| (0..p).map(|_| r.normal() as f32).collect())
                        .collect()
                })
                .collect();
            // ties: a coordinate where many examples agree
            for g in grads.iter_mut().take(b / 2) {
                g[1][0] = 1.0;
            }
            let src = ExplicitBlocks {
                grads: grads.clone(),
            };
            let mut dir = vec![vec![0.0; 600], vec![0.0; 5]];
            winsorize_all(&src, &mut dir, lo, hi);
            for l in 0..2 {
                for c in 0..dir[l].len() {
                    let mut v: Vec<f32> = grads.iter().map(|g| g[l][c]).collect();
                    let want = winsorized_mean(&mut v, lo, hi);
                    assert!(
                        (dir[l][c] - want).abs() < 1e-5,
                        "b {b} lo {lo} hi {hi}: {} vs {want}",
                        dir[l][c]
                    );
                }
            }
        }
    }

    #[test]
    fn one_pass_trimming_matches_the_order_statistics() {
        let mut r = coherent_core::Rng::new(9);
        for (b, t) in [(100, 2), (100, 1), (11, 3), (7, 3), (100, 20)] {
            let grads: Vec<Vec<Vec<f32>>> = (0..b)
                .map(|_| vec![(0..300).map(|_| r.normal() as f32).collect()])
                .collect();
            let src = ExplicitBlocks {
                grads: grads.clone(),
            };
            let mut dir = vec![vec![0.0; 300]];
            trim_all(&src, &mut dir, t);
            for c in 0..300 {
                let mut v: Vec<f32> = grads.iter().map(|g| g[0][c]).collect();
                let want = trimmed_mean(&mut v, t);
                assert!((dir[0][c] - want).abs() < 1e-5, "b {b} t {t}");
            }
        }
    }

    #[test]
    fn coordinatewise_visits_every_coordinate_of_every_layer() {
        let mut r = coherent_core::Rng::new(5);
        let grads: Vec<Vec<Vec<f32>>> = (0..9)
            .map(|_| {
                [700usize, 3]
                    .iter()
                    .map(|&p| (0..p).map(|_| r.normal() as f32).collect())
                    .collect()
            })
            .collect();
        let src = ExplicitBlocks {
            grads: grads.clone(),
        };
        let mut dir = vec![vec![0.0; 700], vec![0.0; 3]];
        coordinatewise(&src, &mut dir, |v| v.iter().sum());
        for l in 0..2 {
            for c in 0..dir[l].len() {
                let want: f32 = grads.iter().map(|g| g[l][c]).sum();
                assert!((dir[l][c] - want).abs() < 1e-5);
            }
        }
    }
}
