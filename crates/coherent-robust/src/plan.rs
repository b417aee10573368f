//! How the lanes of a group are sorted: one comparator network per number of rows, each SIMD
//! lane being one coordinate, so that every comparator is one vector `min` and one vector
//! `max`. With AVX-512 or AVX2 the network is an all-ascending bitonic sort whose
//! short-distance levels run in registers ([`crate::bitonic`]); otherwise Batcher's odd-even
//! merge sort ([`network`]).

use crate::bitonic;

/// Coordinates sorted side by side (one AVX-512 register of `f32`, two of AVX2).
pub const LANES: usize = 16;

/// The values of sixteen coordinates for one example (or one rank, once sorted).
pub type Lanes = [f32; LANES];

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

/// The instructions the sorts run on, chosen at run time (the project builds for baseline
/// x86-64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Sixteen lanes per register, 32 registers.
    Avx512,
    /// Eight lanes per register, 16 registers.
    Avx2,
    /// Whatever the compiler makes of plain Rust.
    Portable,
}

impl Kernel {
    /// The widest the processor supports.
    pub(crate) fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel the processor supports, for tests.
    #[cfg(test)]
    pub(crate) fn supported() -> Vec<Kernel> {
        let all = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];
        let widest = all.iter().position(|&k| k == Kernel::detect()).unwrap_or(2);
        all[widest..].to_vec()
    }
}

/// The networks of one padded size: the portable comparators and the memory levels of the
/// bitonic sorts of AVX2 and AVX-512.
type Networks = (Vec<(u32, u32)>, Vec<Vec<(u32, u32)>>, Vec<Vec<(u32, u32)>>);

/// How to sort the lanes of up to `n` values: with AVX-512 or AVX2 a bitonic sort partly in
/// registers, otherwise [`network`] lane by lane; one network per number of whole chunks, so
/// that fewer values cost less.
#[derive(Clone, Debug)]
pub struct SortPlan {
    /// Per number of chunks `k` (index `k - 1`), the networks for `k` chunks.
    sizes: Vec<Networks>,
    kernel: Kernel,
}

impl SortPlan {
    /// The instructions the plan sorts on.
    pub(crate) fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The plan for up to `n` values, on the widest instructions the processor has.
    pub fn new(n: usize) -> SortPlan {
        SortPlan::with_kernel(n, Kernel::detect())
    }

    /// The plan for up to `n` values on `kernel` (which the processor supports).
    pub(crate) fn with_kernel(n: usize, kernel: Kernel) -> SortPlan {
        let sizes = (1..=Self::padded(n) / CHUNK)
            .map(|k| {
                let rows = k * CHUNK;
                (
                    network(rows),
                    bitonic::memory_levels(rows, bitonic::CHUNK_AVX2),
                    bitonic::memory_levels(rows, bitonic::CHUNK_AVX512),
                )
            })
            .collect();
        SortPlan { sizes, kernel }
    }

    /// Rows of the buffer that [`SortPlan::sort`] takes for `n` values: `n` rounded up to
    /// whole chunks.
    pub fn padded(n: usize) -> usize {
        n.div_ceil(CHUNK) * CHUNK
    }

    /// Sorts every lane of `values[..n]` ascending (`n` at most the plan's); `values` has at
    /// least [`SortPlan::padded`]`(n)` rows, and its rows from `n` to there are overwritten
    /// (with `+inf`).
    pub fn sort(&self, values: &mut [Lanes], n: usize) {
        let rows = Self::padded(n);
        if rows == 0 {
            return;
        }
        let (net, avx2, avx512) = &self.sizes[rows / CHUNK - 1];
        let values = &mut values[..rows];
        values[n..].fill([f32::INFINITY; LANES]);
        match self.kernel {
            // SAFETY: the kernel was detected on this processor, the buffer has whole chunks
            // with `+inf` padding, and the levels were made for its length.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { bitonic::sort_avx512(values, avx512) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { bitonic::sort_avx2(values, avx2) },
            _ => run(values, net),
        }
    }
}

/// Rows per chunk of a [`SortPlan`]: a whole number of register chunks of either kernel.
const CHUNK: usize = bitonic::CHUNK_AVX512;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_sorts_every_size() {
        let mut r = coherent_core::Rng::new(11);
        let kernels = Kernel::supported();
        assert_eq!(kernels[0], Kernel::detect());
        for kernel in kernels {
            let plan = SortPlan::with_kernel(130, kernel);
            for n in 1..=130 {
                let mut v: Vec<Lanes> = (0..SortPlan::padded(n))
                    .map(|_| std::array::from_fn(|l| (r.normal() * 3.0).round() as f32 + l as f32))
                    .collect();
                let mut want: Vec<Vec<f32>> = (0..LANES)
                    .map(|l| v[..n].iter().map(|x| x[l]).collect())
                    .collect();
                want.iter_mut().for_each(|w| w.sort_by(f32::total_cmp));
                let mut portable = v[..n].to_vec();
                run(&mut portable, &network(n));
                plan.sort(&mut v, n);
                assert_eq!(
                    portable,
                    v[..n],
                    "{kernel:?} n {n}: the network and the plan agree"
                );
                for l in 0..LANES {
                    let got: Vec<f32> = v[..n].iter().map(|x| x[l]).collect();
                    assert_eq!(got, want[l], "{kernel:?} n {n} lane {l}");
                }
            }
        }
        assert!(network(100).len() < 1200, "{}", network(100).len());
    }
}
