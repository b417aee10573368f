//! Order statistics whose cost does not depend on the rank asked for: the batch dimension of
//! eight coordinates at a time is sorted by one comparator network, each SIMD lane being one
//! coordinate, so that every comparator is one vector `min` and one vector `max`.
//!
//! With AVX2 the network is an all-ascending bitonic sort whose short-distance levels run in
//! registers ([`crate::bitonic`]); otherwise Batcher's odd-even merge sort ([`network`]). Either
//! way the cost is the same for every rank, which makes it the kernel of large clip or trim
//! counts and of the median.

use crate::bitonic;
use coherent_core::PerExampleBlocks;
use rayon::prelude::*;

/// Coordinates per vector (one AVX2 register of `f32`).
pub const LANES: usize = 8;

/// The values of eight coordinates for one example (or one rank, once sorted).
pub type Lanes = [f32; LANES];

/// Coordinates per block of [`sorted_groups`] (a multiple of [`LANES`]): the block's values
/// for all examples stay in the L1 cache while its groups are gathered.
const GROUP_BLOCK: usize = 64;

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

/// How to sort the lanes of `n` values: with AVX2 the bitonic sort of [`crate::bitonic`],
/// otherwise [`network`]`(n)` lane by lane.
#[derive(Clone, Debug)]
pub struct SortPlan {
    n: usize,
    comparators: Vec<(u32, u32)>,
    memory_levels: Vec<Vec<(u32, u32)>>,
}

impl SortPlan {
    /// The plan for `n` values.
    pub fn new(n: usize) -> SortPlan {
        SortPlan {
            n,
            comparators: network(n),
            memory_levels: bitonic::memory_levels(Self::padded(n)),
        }
    }

    /// Rows of the buffer that [`SortPlan::sort`] takes: `n` rounded up to whole chunks.
    pub fn padded(n: usize) -> usize {
        n.div_ceil(bitonic::CHUNK) * bitonic::CHUNK
    }

    /// Sorts every lane of `values[..n]` ascending; `values` has [`SortPlan::padded`]`(n)` rows
    /// and its rows from `n` on are overwritten (with `+inf`).
    pub fn sort(&self, values: &mut [Lanes]) {
        assert_eq!(values.len(), Self::padded(self.n), "rows of the buffer");
        values[self.n..].fill([f32::INFINITY; LANES]);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor supports AVX2 (checked just above), the buffer has whole
            // chunks with `+inf` padding, and the levels were made for its length.
            unsafe { bitonic::sort_avx2(values, &self.memory_levels) };
            return;
        }
        run(values, &self.comparators);
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
            || (Vec::new(), vec![[0.0; LANES]; SortPlan::padded(b)]),
            |(rows, sorted), (k, chunk)| {
                let (start, len) = (k * GROUP_BLOCK, chunk.len());
                rows.resize(b * len, 0.0);
                src.block_rows(layer, start..start + len, rows);
                for (g, place) in chunk.chunks_mut(LANES).enumerate() {
                    gather(rows, len, g * LANES, sorted);
                    plan.sort(sorted);
                    let result = finish(&sorted[..b]);
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
    if n == LANES {
        // a copy of known size: one vector move, not a call to memmove
        for (row, lanes) in rows.chunks_exact(len).zip(group.iter_mut()) {
            *lanes = row[first..first + LANES].try_into().expect("eight lanes");
        }
        return;
    }
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
            let mut v: Vec<Lanes> = (0..SortPlan::padded(n))
                .map(|_| std::array::from_fn(|l| (r.normal() * 3.0).round() as f32 + l as f32))
                .collect();
            let mut want: Vec<Vec<f32>> = (0..LANES)
                .map(|l| v[..n].iter().map(|x| x[l]).collect())
                .collect();
            want.iter_mut().for_each(|w| w.sort_by(f32::total_cmp));
            let mut portable = v[..n].to_vec();
            run(&mut portable, &network(n));
            plan.sort(&mut v);
            assert_eq!(portable, v[..n], "n {n}: the network and the plan agree");
            for l in 0..LANES {
                let got: Vec<f32> = v[..n].iter().map(|x| x[l]).collect();
                assert_eq!(got, want[l], "n {n} lane {l}");
            }
        }
        assert!(network(100).len() < 1200, "{}", network(100).len());
    }
}
