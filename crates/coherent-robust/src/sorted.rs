//! Order statistics whose cost does not depend on the rank asked for: the batch dimension of
//! sixteen coordinates at a time is sorted by one comparator network, each SIMD lane being one
//! coordinate, so that every comparator is one vector `min` and one vector `max`.
//!
//! Examples whose sixteen values are all zero (behind a ReLU that is off, or on an input that is
//! blank there: common in per-example gradients) are not sorted but counted, and put back in
//! their place by rank arithmetic ([`Ranked`]): the network sorts only the others.
//!
//! The sort ([`crate::SortPlan`]) costs the same for every rank, which makes it the kernel of
//! large clip or trim counts and of the median.

use crate::aligned::LineBuffer;
use crate::plan::Kernel;
use crate::{Lanes, Ranked, SortPlan, LANES};
use coherent_core::PerExampleBlocks;
use rayon::prelude::*;

/// Coordinates per block of [`sorted_groups`] (a multiple of [`LANES`]): the block's values
/// for all examples stay in the L1 cache while its groups are gathered.
const GROUP_BLOCK: usize = 64;

/// Writes `finish(ranked)` for every group of sixteen coordinates of every layer into the
/// group's places of `direction`, where `ranked` holds the group's values over the examples in
/// rank order (all but the rows of zeros sorted, [`Ranked`]); lanes past the end of a layer are
/// not written. A [`RankStatistic`](crate::RankStatistic) is such a `finish`.
pub fn sorted_groups<F>(src: &dyn PerExampleBlocks, direction: &mut [Vec<f32>], finish: F)
where
    F: GroupStatistic + Sync,
{
    sorted_groups_on(Kernel::detect(), src, direction, finish);
}

/// [`sorted_groups`] on `kernel` (which the processor supports).
pub(crate) fn sorted_groups_on<F>(
    kernel: Kernel,
    src: &dyn PerExampleBlocks,
    direction: &mut [Vec<f32>],
    finish: F,
) where
    F: GroupStatistic + Sync,
{
    let b = src.batch();
    let plan = SortPlan::with_kernel(b, kernel);
    for (layer, out) in direction.iter_mut().enumerate() {
        out.par_chunks_mut(GROUP_BLOCK).enumerate().for_each_init(
            || (LineBuffer::default(), LineBuffer::default()),
            |(rows, group), (k, chunk)| {
                let (start, len) = (k * GROUP_BLOCK, chunk.len());
                let rows = rows.values(b * len);
                src.block_rows(layer, start..start + len, rows);
                let group = group.lanes(SortPlan::padded(b));
                let block = Block { rows, len, group };
                match plan.kernel() {
                    // SAFETY: the kernel was detected on this processor.
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512 => unsafe { rank_block_avx512(&plan, block, chunk, &finish) },
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => unsafe { rank_block_avx2(&plan, block, chunk, &finish) },
                    _ => rank_block(&plan, block, chunk, &finish, gather_nonzero),
                }
            },
        );
    }
}

/// What [`sorted_groups`] computes from each group's values in rank order: a
/// [`RankStatistic`](crate::RankStatistic), or any `Fn(&Ranked) -> Lanes`.
pub trait GroupStatistic {
    /// The statistic of every lane of `ranked`.
    fn of(&self, ranked: &Ranked) -> Lanes;
}

impl<F: Fn(&Ranked) -> Lanes> GroupStatistic for F {
    #[inline(always)]
    fn of(&self, ranked: &Ranked) -> Lanes {
        self(ranked)
    }
}

/// A block of per-example values and the buffer its groups are sorted in.
struct Block<'a> {
    /// Example-major: one row of `len` coordinates per example.
    rows: &'a [f32],
    len: usize,
    /// Room for every example's row of one group.
    group: &'a mut [Lanes],
}

/// Takes the rows of one group of a block into its buffer, leaving out rows of zeros:
/// `(rows, len, first coordinate, buffer) -> rows kept`.
type Gather = fn(&[f32], usize, usize, &mut [Lanes]) -> usize;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rank_block_avx512<F>(plan: &SortPlan, block: Block, out: &mut [f32], finish: &F)
where
    F: GroupStatistic,
{
    rank_block(plan, block, out, finish, |rows, len, first, group| {
        // SAFETY: AVX-512F is enabled in this function.
        unsafe { gather_nonzero_avx512(rows, len, first, group) }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rank_block_avx2<F>(plan: &SortPlan, block: Block, out: &mut [f32], finish: &F)
where
    F: GroupStatistic,
{
    rank_block(plan, block, out, finish, |rows, len, first, group| {
        // SAFETY: AVX2 is enabled in this function.
        unsafe { gather_nonzero_avx2(rows, len, first, group) }
    });
}

/// Ranks every group of sixteen coordinates of `block` and writes `finish` of each into `out`
/// (the block's places in the direction). Inlined into the callers above, so that the ranking
/// arithmetic is compiled for their instructions.
#[inline(always)]
fn rank_block<F>(plan: &SortPlan, block: Block, out: &mut [f32], finish: &F, gather: Gather)
where
    F: GroupStatistic,
{
    let Block { rows, len, group } = block;
    let b = rows.len() / len;
    for (g, place) in out.chunks_mut(LANES).enumerate() {
        let kept = gather(rows, len, g * LANES, group);
        plan.sort(group, kept);
        let result = finish.of(&Ranked::on(plan.kernel(), &group[..kept], b - kept));
        match <&mut Lanes>::try_from(&mut *place) {
            Ok(whole) => *whole = result,
            Err(_) => place.copy_from_slice(&result[..place.len()]),
        }
    }
}

/// [`gather_nonzero`] with AVX-512: one load, one compare, one store per example.
///
/// # Safety
/// The processor supports AVX-512F; to be fast, the caller enables it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn gather_nonzero_avx512(
    rows: &[f32],
    len: usize,
    first: usize,
    group: &mut [Lanes],
) -> usize {
    use std::arch::x86_64::*;
    compact(rows, len, first, group, |src, dst| {
        // SAFETY: AVX-512F by this function's contract; sixteen values at `src` and `dst`, by
        // `compact`'s.
        unsafe {
            let v = _mm512_loadu_ps(src);
            _mm512_storeu_ps(dst, v);
            // not-equal, unordered: NaN counts as not zero
            _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps()) != 0
        }
    })
}

/// [`gather_nonzero`] with AVX2: two loads, two compares, two stores per example.
///
/// # Safety
/// The processor supports AVX2; to be fast, the caller enables it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn gather_nonzero_avx2(
    rows: &[f32],
    len: usize,
    first: usize,
    group: &mut [Lanes],
) -> usize {
    use std::arch::x86_64::*;
    compact(rows, len, first, group, |src, dst| {
        // SAFETY: AVX2 by this function's contract; sixteen values at `src` and `dst`, by
        // `compact`'s.
        unsafe {
            let (v, w) = (_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8)));
            _mm256_storeu_ps(dst, v);
            _mm256_storeu_ps(dst.add(8), w);
            let zero = _mm256_setzero_ps();
            let nonzero = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_NEQ_UQ>(v, zero),
                _mm256_cmp_ps::<_CMP_NEQ_UQ>(w, zero),
            );
            _mm256_movemask_ps(nonzero) != 0
        }
    })
}

/// The loop of the vector gathers: `copy(source, destination)` copies sixteen values and says
/// whether any is not zero; each is written at the next free row and kept only if so (no
/// branch to mispredict). A group cut by the end of the block takes [`gather_nonzero`].
#[inline(always)]
fn compact(
    rows: &[f32],
    len: usize,
    first: usize,
    group: &mut [Lanes],
    copy: impl Fn(*const f32, *mut f32) -> bool,
) -> usize {
    let b = rows.len() / len;
    if len - first < LANES || group.len() < b || rows.len() != b * len {
        return gather_nonzero(rows, len, first, group);
    }
    let mut kept = 0;
    for e in 0..b {
        // in bounds: row `e` has `first + 16 <= len` values, and `kept <= e < b <= group.len()`
        let src = rows[e * len + first..].as_ptr();
        let dst = group[kept].as_mut_ptr();
        kept += usize::from(copy(src, dst));
    }
    kept
}

/// Copies coordinates `first..first + 16` (fewer at the end of the block, the other lanes
/// zero) of every example row of the example-major block `rows` (rows of `len`) into `group`,
/// leaving out the rows that are zero in every lane; returns how many rows it kept.
#[inline(always)]
fn gather_nonzero(rows: &[f32], len: usize, first: usize, group: &mut [Lanes]) -> usize {
    let n = LANES.min(len - first);
    let mut kept = 0;
    for row in rows.chunks_exact(len) {
        let lanes: Lanes = std::array::from_fn(|l| if l < n { row[first + l] } else { 0.0 });
        // written unconditionally, kept only if some lane is not zero (of either sign): no
        // branch to mispredict
        group[kept] = lanes;
        kept += usize::from(lanes.iter().any(|&x| x != 0.0));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gather_keeps_the_rows_that_are_not_zero() {
        let mut r = coherent_core::Rng::new(13);
        let (b, len) = (37, 40);
        // whole rows of zeros, rows with one value (of either sign, or NaN), zero lanes
        let rows: Vec<f32> = (0..b * len)
            .map(|i| match (i / len) % 4 {
                0 => 0.0,
                1 if i % len == 21 => [-0.0, 3.0, f32::NAN][i % 3],
                1 => 0.0,
                _ if r.uniform() < 0.5 => 0.0,
                _ => r.normal() as f32,
            })
            .collect();
        let gathers: Vec<(&str, Gather)> = vec![
            ("portable", gather_nonzero),
            #[cfg(target_arch = "x86_64")]
            ("avx2", |rows, len, first, group| unsafe {
                gather_nonzero_avx2(rows, len, first, group)
            }),
            #[cfg(target_arch = "x86_64")]
            ("avx512", |rows, len, first, group| unsafe {
                gather_nonzero_avx512(rows, len, first, group)
            }),
        ];
        let kernels = Kernel::supported();
        for (name, gather) in gathers {
            let runs = match name {
                "avx2" => kernels.contains(&Kernel::Avx2),
                "avx512" => kernels.contains(&Kernel::Avx512),
                _ => true,
            };
            if !runs {
                continue;
            }
            for first in [0, 16, 32] {
                let mut group = vec![[1.0; LANES]; b];
                let kept = gather(&rows, len, first, &mut group);
                let want: Vec<Lanes> = rows
                    .chunks_exact(len)
                    .map(|row| std::array::from_fn(|l| row.get(first + l).copied().unwrap_or(0.0)))
                    .filter(|lanes: &Lanes| lanes.iter().any(|&x| x != 0.0))
                    .collect();
                assert_eq!(kept, want.len(), "{name} from {first}");
                for (got, want) in group[..kept].iter().zip(&want) {
                    let same = got
                        .iter()
                        .zip(want)
                        .all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(same, "{name} from {first}: {got:?} vs {want:?}");
                }
            }
        }
    }
}
