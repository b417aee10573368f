//! Matrix transposition for the per-example weight gradient: blocks of 8 x 8 are transposed in
//! AVX registers (24 shuffles for 64 values), the edges value by value.

/// `out[j * rows + i] = m[i * ld + j]` for the `rows x cols` matrix `m` whose rows start `ld`
/// apart.
///
/// # Panics
///
/// If `m` or `out` is too short for the shape.
pub(super) fn transpose(m: &[f32], ld: usize, (rows, cols): (usize, usize), out: &mut [f32]) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        cols <= ld && m.len() >= (rows - 1) * ld + cols,
        "transpose: input too short"
    );
    let out = &mut out[..rows * cols];
    let (bi, bj) = (rows / 8 * 8, cols / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx") {
        // SAFETY: AVX is available; every block lies inside `m` and `out` (checked above).
        unsafe { blocks(m, ld, (bi, bj), rows, out) };
    } else {
        by_value(m, ld, (0..bi, 0..bj), rows, out);
    }
    #[cfg(not(target_arch = "x86_64"))]
    by_value(m, ld, (0..bi, 0..bj), rows, out);
    by_value(m, ld, (bi..rows, 0..cols), rows, out);
    by_value(m, ld, (0..bi, bj..cols), rows, out);
}

/// The values of rows `is` and columns `js`, one at a time.
fn by_value(
    m: &[f32],
    ld: usize,
    (is, js): (std::ops::Range<usize>, std::ops::Range<usize>),
    rows: usize,
    out: &mut [f32],
) {
    for j in js {
        for i in is.clone() {
            out[j * rows + i] = m[i * ld + j];
        }
    }
}

/// The first `bi x bj` values (multiples of 8), in 8 x 8 blocks.
///
/// # Safety
///
/// AVX must be available, and the blocks must lie inside `m` and `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn blocks(m: &[f32], ld: usize, (bi, bj): (usize, usize), rows: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let (src, dst) = (m.as_ptr(), out.as_mut_ptr());
    for i in (0..bi).step_by(8) {
        for j in (0..bj).step_by(8) {
            let mut r = [_mm256_setzero_ps(); 8];
            for (k, row) in r.iter_mut().enumerate() {
                // SAFETY: row `i + k`, columns `j..j + 8` lie inside `m` (the caller's promise).
                *row = unsafe { _mm256_loadu_ps(src.add((i + k) * ld + j)) };
            }
            let t = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            let s = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            for k in 0..4 {
                let low = _mm256_permute2f128_ps::<0x20>(s[k], s[k + 4]);
                let high = _mm256_permute2f128_ps::<0x31>(s[k], s[k + 4]);
                // SAFETY: rows `j + k` and `j + k + 4` of `out`, values `i..i + 8`, lie inside
                // `out` (the caller's promise).
                unsafe {
                    _mm256_storeu_ps(dst.add((j + k) * rows + i), low);
                    _mm256_storeu_ps(dst.add((j + k + 4) * rows + i), high);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_equal_a_loop_over_every_value() {
        for (rows, cols, ld) in [
            (8, 8, 8),
            (16, 32, 1024),
            (27, 16, 16),
            (13, 5, 9),
            (64, 17, 40),
        ] {
            let m: Vec<f32> = (0..rows * ld).map(|v| v as f32 * 0.5 - 3.0).collect();
            let mut out = vec![f32::NAN; rows * cols + 3];
            transpose(&m, ld, (rows, cols), &mut out);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(out[j * rows + i], m[i * ld + j], "{rows}x{cols} ({i}, {j})");
                }
            }
            assert!(
                out[rows * cols..].iter().all(|v| v.is_nan()),
                "wrote past the end"
            );
        }
    }
}
