//! The register tile of the convolution's implicit products, on AVX-512:
//! `C (rows x cols) [+]= sum_q A(q, i) B(q, j)`, with `A` read one value at a time (broadcast
//! to every lane, so it may have any strides) and `B` read one row of up to 32 contiguous
//! values per step `q`. Each product of the layer picks its operands so that `B` is a small
//! panel in cache (an unfolded slice of the input, or a slice of the output gradients) and
//! `A` the weights or the other operand as stored: nothing large is packed or unfolded.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Values of `B` (and columns of `C`) per tile: two AVX-512 vectors.
pub(super) const COLS: usize = 32;

/// Values per AVX-512 vector.
const LANES: usize = 16;

/// Rows of `C` per tile.
const ROWS: usize = 8;

/// An operand read by broadcasts: value `(q, i)` at `q * step + i * stride`.
#[derive(Clone, Copy)]
pub(super) struct Broadcast<'a> {
    pub data: &'a [f32],
    /// Distance between steps `q`.
    pub step: usize,
    /// Distance between rows `i`.
    pub stride: usize,
}

/// A row-major operand with `ld` values between rows.
pub(super) struct Rows<T> {
    pub data: T,
    pub ld: usize,
}

/// Whether the tiles can run on this machine (AVX-512F, detected at run time).
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C[..rows, ..cols] [+]= sum_{q < depth} A(q, i) B[q, j]` (`cols <= COLS`; `B`'s rows hold at
/// least `COLS` readable values, those past `cols` ignored).
///
/// # Panics
/// If an operand is too short for the shape, or the tiles are not [`available`].
pub(super) fn product(
    (rows, depth, cols): (usize, usize, usize),
    a: Broadcast<'_>,
    b: Rows<&[f32]>,
    c: Rows<&mut [f32]>,
    accumulate: bool,
) {
    assert!(cols <= COLS && b.ld >= cols && c.ld >= cols, "tile columns");
    if rows == 0 || cols == 0 {
        return;
    }
    let last = |n: usize, ld: usize, width: usize| (n - 1) * ld + width;
    assert!(
        depth == 0 || b.data.len() >= last(depth, b.ld, COLS),
        "tile B too short"
    );
    assert!(c.data.len() >= last(rows, c.ld, cols), "tile C too short");
    assert!(
        depth == 0 || a.data.len() > (depth - 1) * a.step + (rows - 1) * a.stride,
        "tile A too short"
    );
    assert!(available(), "AVX-512 tiles on a machine without AVX-512");
    #[cfg(target_arch = "x86_64")]
    for i0 in (0..rows).step_by(ROWS) {
        let shape = (ROWS.min(rows - i0), depth, cols);
        let a = Broadcast {
            data: &a.data[i0 * a.stride..],
            ..a
        };
        let c = Rows {
            data: &mut c.data[i0 * c.ld..],
            ld: c.ld,
        };
        // SAFETY: AVX-512F is available (asserted), and the assertions above bound every
        // index the tile reads or writes: A up to (depth-1, rows-1), B up to row depth-1 and
        // column COLS-1, C up to row rows-1 and column cols-1 (lanes past cols are masked).
        unsafe {
            if cols <= LANES {
                tiles::<1>(shape, a, &b, c, accumulate);
            } else {
                tiles::<2>(shape, a, &b, c, accumulate);
            }
        }
    }
}

/// One tile of `shape.0 <= ROWS` rows of `V` vectors.
///
/// # Safety
/// As [`tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tiles<const V: usize>(
    shape: (usize, usize, usize),
    a: Broadcast<'_>,
    b: &Rows<&[f32]>,
    c: Rows<&mut [f32]>,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match shape.0 {
            8 => tile::<8, V>(shape, a, b, c, accumulate),
            7 => tile::<7, V>(shape, a, b, c, accumulate),
            6 => tile::<6, V>(shape, a, b, c, accumulate),
            5 => tile::<5, V>(shape, a, b, c, accumulate),
            4 => tile::<4, V>(shape, a, b, c, accumulate),
            3 => tile::<3, V>(shape, a, b, c, accumulate),
            2 => tile::<2, V>(shape, a, b, c, accumulate),
            _ => tile::<1, V>(shape, a, b, c, accumulate),
        }
    }
}

/// One tile of `R` rows and `V` vectors of columns: `R V` accumulators in registers over the
/// whole depth.
///
/// # Safety
/// AVX-512F must be available, and the operands long enough for `(R, depth, cols)` (see
/// [`product`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const V: usize>(
    (_, depth, cols): (usize, usize, usize),
    a: Broadcast<'_>,
    b: &Rows<&[f32]>,
    c: Rows<&mut [f32]>,
    accumulate: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let (ap, bp) = (a.data.as_ptr(), b.data.as_ptr());
    for q in 0..depth {
        let mut bq = [_mm512_setzero_ps(); V];
        // SAFETY: in bounds by the caller's contract.
        let row = unsafe { ap.add(q * a.step) };
        for (v, bq) in bq.iter_mut().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            *bq = unsafe { _mm512_loadu_ps(bp.add(q * b.ld + v * LANES)) };
        }
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            let x = _mm512_set1_ps(unsafe { *row.add(i * a.stride) });
            for (acc, bq) in acc.iter_mut().zip(&bq) {
                *acc = _mm512_fmadd_ps(x, *bq, *acc);
            }
        }
    }
    let mut masks = [0 as __mmask16; V];
    for (v, m) in masks.iter_mut().enumerate() {
        let n = cols.saturating_sub(v * LANES).min(LANES);
        *m = ((1u32 << n) - 1) as __mmask16;
    }
    let cp = c.data.as_mut_ptr();
    for (i, acc) in acc.iter().enumerate() {
        for (v, (&sum, &m)) in acc.iter().zip(&masks).enumerate() {
            // SAFETY: in bounds by the caller's contract; lanes past `cols` are masked.
            unsafe {
                let at = cp.add(i * c.ld + v * LANES);
                let sum = if accumulate {
                    _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, at))
                } else {
                    sum
                };
                _mm512_mask_storeu_ps(at, m, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::Rng;

    #[test]
    fn tiles_equal_a_loop_over_every_index() {
        if !available() {
            return;
        }
        let mut rng = Rng::new(4);
        for (rows, depth, cols) in [
            (8, 5, 32),
            (13, 27, 17),
            (3, 1, 32),
            (20, 144, 1),
            (1, 0, 9),
        ] {
            let (step, stride) = (rows + 2, 1);
            let a: Vec<f32> = (0..depth * step + rows)
                .map(|_| rng.normal() as f32)
                .collect();
            let b: Vec<f32> = (0..depth.max(1) * 40)
                .map(|_| rng.normal() as f32)
                .collect();
            for accumulate in [false, true] {
                let init: Vec<f32> = (0..rows * 35).map(|_| rng.normal() as f32).collect();
                let mut c = init.clone();
                product(
                    (rows, depth, cols),
                    Broadcast {
                        data: &a,
                        step,
                        stride,
                    },
                    Rows { data: &b, ld: 40 },
                    Rows {
                        data: &mut c,
                        ld: 35,
                    },
                    accumulate,
                );
                for i in 0..rows {
                    for j in 0..35 {
                        let mut want = if accumulate || j >= cols {
                            init[i * 35 + j]
                        } else {
                            0.0
                        };
                        if j < cols {
                            for q in 0..depth {
                                want += a[q * step + i * stride] * b[q * 40 + j];
                            }
                        }
                        let got = c[i * 35 + j];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{rows} {depth} {cols} ({i}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
