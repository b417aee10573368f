//! im2col and col2im: unfolding one example into its patches (a matrix whose product with the
//! weights is the convolution) and folding patch gradients back onto the example.

use super::geometry::{valid, ConvGeometry};

/// Unfolds one example `x` (`C_in x H x W`) into `u` (`K x T`: row `(c, ki, kj)` holds that
/// patch value at every output position), the layout in which rows are copied contiguously.
pub fn im2col(g: &ConvGeometry, x: &[f32], u: &mut [f32]) {
    let t = g.positions();
    for (r, row) in u.chunks_exact_mut(t).take(g.patch()).enumerate() {
        im2col_row(g, x, r, row);
    }
}

/// Row `r` (patch value `(c, ki, kj)`) of the unfolding of `x` into `out` (`T` floats).
pub(super) fn im2col_row(g: &ConvGeometry, x: &[f32], r: usize, out: &mut [f32]) {
    let (k, s, pad) = (g.kernel, g.stride, g.padding);
    let (c, ki, kj) = (r / (k * k), r / k % k, r % k);
    let (oh, ow) = (g.out_height(), g.out_width());
    let plane = &x[c * g.height * g.width..(c + 1) * g.height * g.width];
    let rows = valid(oh, s, ki, pad, g.height);
    let cols = valid(ow, s, kj, pad, g.width);
    for (row, out) in out.chunks_exact_mut(ow).enumerate() {
        if !rows.contains(&row) {
            out.fill(0.0);
            continue;
        }
        let line = &plane[(row * s + ki - pad) * g.width..][..g.width];
        zero_short(&mut out[..cols.start]);
        zero_short(&mut out[cols.end..]);
        if s == 1 {
            let start = cols.start + kj - pad;
            copy_short(&mut out[cols.clone()], &line[start..start + cols.len()]);
        } else {
            for q in cols.clone() {
                out[q] = line[q * s + kj - pad];
            }
        }
    }
}

/// `dst = src` for the short rows of an image (8 to 32 values), in fixed blocks of eight that
/// compile to a few vector moves instead of a call to `memcpy` per row.
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let block: &[f32; 8] = s.try_into().expect("eight values");
        d.copy_from_slice(block);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Zeros the few values at the edge of a row (the padding), without a call to `memset`.
fn zero_short(dst: &mut [f32]) {
    let mut d = dst.chunks_exact_mut(8);
    for d in &mut d {
        d.copy_from_slice(&[0.0; 8]);
    }
    for v in d.into_remainder() {
        *v = 0.0;
    }
}

/// Folds `du` (`K x T`) back onto one example, adding into `dx` (`C_in x H x W`): the
/// adjoint of [`im2col`].
pub fn col2im(g: &ConvGeometry, du: &[f32], dx: &mut [f32]) {
    let (k, s, pad) = (g.kernel, g.stride, g.padding);
    let (oh, ow) = (g.out_height(), g.out_width());
    let t = oh * ow;
    for c in 0..g.in_channels {
        let plane = &mut dx[c * g.height * g.width..(c + 1) * g.height * g.width];
        for ki in 0..k {
            let rows = valid(oh, s, ki, pad, g.height);
            for kj in 0..k {
                let cols = valid(ow, s, kj, pad, g.width);
                let row = &du[((c * k + ki) * k + kj) * t..][..t];
                for r in rows.clone() {
                    let line = &mut plane[(r * s + ki - pad) * g.width..][..g.width];
                    let src = &row[r * ow..(r + 1) * ow];
                    if s == 1 {
                        let start = cols.start + kj - pad;
                        let dst = &mut line[start..start + cols.len()];
                        dst.iter_mut()
                            .zip(&src[cols.clone()])
                            .for_each(|(d, v)| *d += v);
                    } else {
                        for q in cols.clone() {
                            line[q * s + kj - pad] += src[q];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::Rng;

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), u> = <x, col2im(u)> for all x, u
        let g = ConvGeometry::new((3, 7, 6), 4, 3, 2, 1);
        let mut rng = Rng::new(2);
        let x: Vec<f32> = (0..g.input_len()).map(|_| rng.normal() as f32).collect();
        let u: Vec<f32> = (0..g.positions() * g.patch())
            .map(|_| rng.normal() as f32)
            .collect();
        let mut ux = vec![0.0; u.len()];
        im2col(&g, &x, &mut ux);
        let mut xu = vec![0.0; x.len()];
        col2im(&g, &u, &mut xu);
        let lhs: f32 = ux.iter().zip(&u).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&xu).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}
