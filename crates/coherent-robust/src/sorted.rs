//! Order statistics whose cost does not depend on the rank asked for: the batch dimension of
//! eight coordinates at a time is sorted by one comparator network, each SIMD lane being one
//! coordinate, so that every comparator is one vector `min` and one vector `max`.
//!
//! The network is Batcher's odd-even merge sort for the next power of two, without the
//! comparators that only touch padding (`n log^2 n / 4` comparators, about 1,100 for a batch
//! of 100). Its cost is the same for every rank, which makes it the kernel of large clip or
//! trim counts and of the median.

use coherent_core::PerExampleBlocks;
use rayon::prelude::*;

/// Coordinates per vector (one AVX2 register of `f32`).
pub const LANES: usize = 8;

/// The values of eight coordinates for one example (or one rank, once sorted).
pub type Lanes = [f32; LANES];

/// Coordinates per block of [`sorted_groups`]: a multiple of [`LANES`].
const GROUP_BLOCK: usize = 256;

/// The comparators `(i, j)`, `i < j`, of Batcher's odd-even merge sort of `n` values: applied
/// in order, each putting the smaller value at `i` and the larger at `j`, they sort any input.
/// Comparators of the power-of-two network that reach past `n` are left out (with `+inf`
/// padding they would never move anything).
pub fn network(n: usize) -> Vec<(u32, u32)> {
    let size = n.next_power_of_two();
    let mut out = Vec::new();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < size {
                for i in 0..k.min(size - j - k) {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) && b < n {
                        out.push((a as u32, b as u32));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    out
}

/// [`network`]`(n)`, ready to sort the lanes of `n` values.
#[derive(Clone, Debug)]
pub struct SortPlan {
    comparators: Vec<(u32, u32)>,
}

impl SortPlan {
    /// The plan for `n` values.
    pub fn new(n: usize) -> SortPlan {
        SortPlan {
            comparators: network(n),
        }
    }

    /// Sorts every lane of `values` ascending (`values` holds at least the `n` of
    /// [`SortPlan::new`]; the first `n` are sorted).
    pub fn sort(&self, values: &mut [Lanes]) {
        assert!(
            self.comparators
                .iter()
                .all(|&(_, j)| (j as usize) < values.len()),
            "the plan is for more than {} values",
            values.len()
        );
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor supports AVX2 (checked just above) and every index of the
            // plan is within `values` (asserted above).
            unsafe { self.sort_avx2(values) };
            return;
        }
        run(values, &self.comparators);
    }

    /// [`SortPlan::sort`] with AVX2: every comparator is one `vminps` and one `vmaxps`.
    ///
    /// # Safety
    /// The processor supports AVX2 and the plan's indices are within `values`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn sort_avx2(&self, values: &mut [Lanes]) {
        use std::arch::x86_64::*;
        let base = values.as_mut_ptr().cast::<f32>();
        for &(i, j) in &self.comparators {
            // SAFETY: `i < j < values.len()` (the caller's contract).
            unsafe {
                let (pi, pj) = (base.add(i as usize * LANES), base.add(j as usize * LANES));
                let (a, b) = (_mm256_loadu_ps(pi), _mm256_loadu_ps(pj));
                _mm256_storeu_ps(pi, _mm256_min_ps(a, b));
                _mm256_storeu_ps(pj, _mm256_max_ps(a, b));
            }
        }
    }
}

/// Applies the comparators `net` to every lane of `values`, portably.
fn run(values: &mut [Lanes], net: &[(u32, u32)]) {
    for &(i, j) in net {
        let (a, b) = (values[i as usize], values[j as usize]);
        for l in 0..LANES {
            let swap = b[l] < a[l];
            values[i as usize][l] = if swap { b[l] } else { a[l] };
            values[j as usize][l] = if swap { a[l] } else { b[l] };
        }
    }
}

/// Writes, for every layer and every group of eight coordinates, `finish(sorted)` into the
/// group's eight places of `direction`, where `sorted[r]` holds the `r`-th smallest value
/// (over the examples) of each of the eight coordinates. Lanes past the end of a layer hold
/// unspecified values and are not written.
pub fn sorted_groups(
    src: &dyn PerExampleBlocks,
    direction: &mut [Vec<f32>],
    finish: impl Fn(&[Lanes]) -> Lanes + Sync,
) {
    let b = src.batch();
    let plan = SortPlan::new(b);
    for (layer, out) in direction.iter_mut().enumerate() {
        out.par_chunks_mut(GROUP_BLOCK).enumerate().for_each_init(
            || (Vec::new(), vec![[0.0; LANES]; b]),
            |(rows, sorted), (k, chunk)| {
                let (start, len) = (k * GROUP_BLOCK, chunk.len());
                rows.resize(b * len, 0.0);
                src.block_rows(layer, start..start + len, rows);
                for (g, place) in chunk.chunks_mut(LANES).enumerate() {
                    gather(rows, len, g * LANES, sorted);
                    plan.sort(sorted);
                    let result = finish(sorted);
                    place.copy_from_slice(&result[..place.len()]);
                }
            },
        );
    }
}

/// Copies coordinates `first..first + 8` (fewer at the end of the block) of every example row
/// of the example-major block `rows` (rows of `len`) into `group`.
fn gather(rows: &[f32], len: usize, first: usize, group: &mut [Lanes]) {
    let n = LANES.min(len - first);
    for (row, lanes) in rows.chunks_exact(len).zip(group.iter_mut()) {
        lanes[..n].copy_from_slice(&row[first..first + n]);
    }
}

/// The sum of `values`, lane by lane.
pub fn lane_sum(sorted: &[Lanes]) -> Lanes {
    let mut sum = [0.0; LANES];
    for v in sorted {
        for l in 0..LANES {
            sum[l] += v[l];
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_sorts_every_size() {
        let mut r = coherent_core::Rng::new(11);
        for n in 1..=130 {
            let plan = SortPlan::new(n);
            let mut v: Vec<Lanes> = (0..n)
                .map(|_| std::array::from_fn(|l| (r.normal() * 3.0).round() as f32 + l as f32))
                .collect();
            let mut want: Vec<Vec<f32>> = (0..LANES)
                .map(|l| v.iter().map(|x| x[l]).collect())
                .collect();
            want.iter_mut().for_each(|w| w.sort_by(f32::total_cmp));
            plan.sort(&mut v);
            for l in 0..LANES {
                let got: Vec<f32> = v.iter().map(|x| x[l]).collect();
                assert_eq!(got, want[l], "n {n} lane {l}");
            }
        }
        assert!(network(100).len() < 1200, "{}", network(100).len());
    }
}
