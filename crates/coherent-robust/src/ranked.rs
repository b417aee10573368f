//! A group's values in rank order, with the rows of zeros that were left out of the sort put
//! back by rank arithmetic, and the statistics read from it.

use crate::plan::Kernel;
use crate::{Lanes, LANES};

/// The values of sixteen coordinates over all the examples, in rank order: the sorted rows of
/// the examples that were not zero in every lane, and the number of those that were.
pub struct Ranked<'a> {
    sorted: &'a [Lanes],
    zeros: usize,
    kernel: Kernel,
    /// Per lane, how many sorted values are below zero (a count, in `f32` to be compared
    /// with lanes of values): the zeros go after them.
    negatives: Lanes,
}

impl<'a> Ranked<'a> {
    /// The ranking of `sorted` (ascending in every lane) and `zeros` more rows of zeros.
    pub fn new(sorted: &'a [Lanes], zeros: usize) -> Ranked<'a> {
        Ranked::on(Kernel::detect(), sorted, zeros)
    }

    /// [`Ranked::new`], computing on `kernel` (which the processor supports).
    #[inline(always)]
    pub(crate) fn on(kernel: Kernel, sorted: &'a [Lanes], zeros: usize) -> Ranked<'a> {
        let mut negatives = [0.0; LANES];
        if zeros > 0 {
            for row in sorted {
                for l in 0..LANES {
                    negatives[l] += if row[l] < 0.0 { 1.0 } else { 0.0 };
                }
            }
        }
        Ranked {
            sorted,
            zeros,
            kernel,
            negatives,
        }
    }

    /// Values per lane (examples).
    pub fn len(&self) -> usize {
        self.sorted.len() + self.zeros
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `r`-th smallest value (0-based) of every lane.
    #[inline(always)]
    pub fn at(&self, r: usize) -> Lanes {
        let z = self.zeros;
        if z == 0 {
            return self.sorted[r];
        }
        // the lane's value is one of: the sorted row `r` (if it has `r` negatives or more),
        // zero, or the sorted row `r - zeros`
        let below = self.sorted.get(r).copied().unwrap_or_default();
        let above = r.checked_sub(z).map_or([0.0; LANES], |i| self.sorted[i]);
        let (rank, zeros) = (r as f32, z as f32);
        let mut value = [0.0; LANES];
        for l in 0..LANES {
            let p = self.negatives[l];
            let past = if rank < p + zeros { 0.0 } else { above[l] };
            value[l] = if rank < p { below[l] } else { past };
        }
        value
    }

    /// The sum of every lane's values clipped to `low..=high` (per lane, `low <= high`).
    #[inline(always)]
    pub fn clipped_sum(&self, low: &Lanes, high: &Lanes) -> Lanes {
        let mut sum = [0.0f32; LANES];
        for row in self.sorted {
            for l in 0..LANES {
                sum[l] += row[l].max(low[l]).min(high[l]);
            }
        }
        let zeros = self.zeros as f32;
        for l in 0..LANES {
            sum[l] += zeros * 0.0f32.max(low[l]).min(high[l]);
        }
        sum
    }

    /// The sum of the values of ranks `ranks` in every lane, in rank order. A sorted row `u`
    /// holds rank `u` in the lanes where it is below zero (before the left-out zeros) and
    /// rank `u + zeros` in the others.
    #[inline(always)]
    pub fn sum_of_ranks(&self, ranks: std::ops::Range<usize>) -> Lanes {
        let rows = ranks.start.saturating_sub(self.zeros)..ranks.end.min(self.sorted.len());
        // ranks as f32 (exact below 2^24), compared lane by lane with the counts of negatives
        let (first, end) = (ranks.start as f32, ranks.end as f32);
        match self.kernel {
            // SAFETY: the kernel was detected on this processor.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => return unsafe { self.sum_of_ranks_avx512(rows, first, end) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => return unsafe { self.sum_of_ranks_avx2(rows, first, end) },
            _ => {}
        }
        let (zeros, mut sum) = (self.zeros as f32, [0.0f32; LANES]);
        for u in rows {
            let (row, u) = (&self.sorted[u], u as f32);
            for l in 0..LANES {
                let rank = if u < self.negatives[l] { u } else { u + zeros };
                sum[l] += if (rank >= first) & (rank < end) {
                    row[l]
                } else {
                    0.0
                };
            }
        }
        sum
    }

    /// [`Ranked::sum_of_ranks`] over the sorted rows `rows`, with AVX-512 (the compiler does
    /// not vectorise the portable loop well).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_of_ranks_avx512(
        &self,
        rows: std::ops::Range<usize>,
        first: f32,
        end: f32,
    ) -> Lanes {
        use std::arch::x86_64::*;
        // SAFETY: `negatives` and every sorted row hold sixteen lanes.
        let negatives = unsafe { _mm512_loadu_ps(self.negatives.as_ptr()) };
        let zeros = _mm512_set1_ps(self.zeros as f32);
        let (first, end) = (_mm512_set1_ps(first), _mm512_set1_ps(end));
        let mut sum = _mm512_setzero_ps();
        for u in rows {
            let row = unsafe { _mm512_loadu_ps(self.sorted[u].as_ptr()) };
            let u = _mm512_set1_ps(u as f32);
            let past_zeros = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(negatives, u);
            let rank = _mm512_mask_add_ps(u, past_zeros, u, zeros);
            let kept = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(rank, first)
                & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(rank, end);
            sum = _mm512_mask_add_ps(sum, kept, sum, row);
        }
        let mut out = [0.0; LANES];
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sum) };
        out
    }

    /// [`Ranked::sum_of_ranks`] over the sorted rows `rows`, with AVX2: each half of the lanes
    /// in turn, the masks as all-ones or all-zeros lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn sum_of_ranks_avx2(
        &self,
        rows: std::ops::Range<usize>,
        first: f32,
        end: f32,
    ) -> Lanes {
        use std::arch::x86_64::*;
        let mut out = [0.0; LANES];
        let zeros = _mm256_set1_ps(self.zeros as f32);
        let (first, end) = (_mm256_set1_ps(first), _mm256_set1_ps(end));
        for half in [0, LANES / 2] {
            // SAFETY: `negatives`, `out` and every sorted row hold sixteen lanes.
            let negatives = unsafe { _mm256_loadu_ps(self.negatives[half..].as_ptr()) };
            let mut sum = _mm256_setzero_ps();
            for u in rows.clone() {
                let row = unsafe { _mm256_loadu_ps(self.sorted[u][half..].as_ptr()) };
                let u = _mm256_set1_ps(u as f32);
                let past_zeros = _mm256_cmp_ps::<_CMP_LE_OQ>(negatives, u);
                let rank = _mm256_add_ps(u, _mm256_and_ps(past_zeros, zeros));
                let kept = _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_GE_OQ>(rank, first),
                    _mm256_cmp_ps::<_CMP_LT_OQ>(rank, end),
                );
                sum = _mm256_add_ps(sum, _mm256_and_ps(kept, row));
            }
            unsafe { _mm256_storeu_ps(out[half..].as_mut_ptr(), sum) };
        }
        out
    }
}

/// A coordinate-wise statistic of the values of each coordinate in rank order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankStatistic {
    /// The mean after clipping to the `lo`-th smallest and `hi`-th largest values (0-based
    /// from each end): winsorization.
    Winsorized {
        /// Rank of the lower clipping value.
        lo: usize,
        /// Rank, from the top, of the upper clipping value.
        hi: usize,
    },
    /// The mean without the `t` smallest and `t` largest values.
    Trimmed {
        /// Values dropped per side.
        t: usize,
    },
    /// The median (the mean of the two middle values for an even count).
    Median,
}

impl crate::GroupStatistic for RankStatistic {
    /// The statistic of every lane of `s` (`lo + hi < s.len()`, `2 t < s.len()`).
    #[inline(always)]
    fn of(&self, s: &Ranked) -> Lanes {
        let b = s.len();
        match *self {
            RankStatistic::Winsorized { lo, hi } => {
                let (low, high) = (s.at(lo), s.at(b - 1 - hi));
                s.clipped_sum(&low, &high).map(|x| x / b as f32)
            }
            RankStatistic::Trimmed { t } => {
                let kept = (b - 2 * t) as f32;
                s.sum_of_ranks(t..b - t).map(|x| x / kept)
            }
            RankStatistic::Median if b % 2 == 1 => s.at(b / 2),
            RankStatistic::Median => {
                let (below, above) = (s.at(b / 2 - 1), s.at(b / 2));
                std::array::from_fn(|l| (below[l] + above[l]) / 2.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SortPlan;

    #[test]
    fn ranks_put_the_left_out_zeros_back_in_place() {
        let mut r = coherent_core::Rng::new(12);
        for zeros in [0, 1, 5, 40] {
            let kept = 30;
            let mut sorted: Vec<Lanes> = (0..kept)
                .map(|_| {
                    std::array::from_fn(|l| {
                        (r.normal() * 2.0).round() as f32 + l as f32 / 4.0 - 1.0
                    })
                })
                .collect();
            let mut all: Vec<Vec<f32>> = (0..LANES)
                .map(|l| {
                    sorted
                        .iter()
                        .map(|x| x[l])
                        .chain(vec![0.0; zeros])
                        .collect()
                })
                .collect();
            all.iter_mut().for_each(|w| w.sort_by(f32::total_cmp));
            sorted.resize(SortPlan::padded(kept), [0.0; LANES]);
            SortPlan::new(kept).sort(&mut sorted, kept);
            let n = kept + zeros;
            for kernel in Kernel::supported() {
                let ranked = Ranked::on(kernel, &sorted[..kept], zeros);
                for rank in 0..n {
                    let got = ranked.at(rank);
                    for (l, lane) in all.iter().enumerate() {
                        let what = format!("{kernel:?} zeros {zeros} rank {rank} lane {l}");
                        assert_eq!(got[l], lane[rank], "{what}");
                    }
                }
                for first in 0..n {
                    for end in first + 1..=n {
                        let got = ranked.sum_of_ranks(first..end);
                        for (l, lane) in all.iter().enumerate() {
                            let want: f32 = lane[first..end].iter().sum();
                            let what = format!("{kernel:?} zeros {zeros} {first}..{end} lane {l}");
                            assert!((got[l] - want).abs() < 1e-4, "{what}");
                        }
                    }
                }
            }
        }
    }
}
