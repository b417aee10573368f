//! The convolution by its definition, for the tests: which input value every patch value of
//! every output position reads.

use super::geometry::ConvGeometry;

/// Every index of the unfolding `(patch value, position) -> input index` (`None`: padding),
/// by the definition of the convolution.
pub(super) fn taps(g: &ConvGeometry) -> Vec<(usize, usize, Option<usize>)> {
    let (k, ow) = (g.kernel, g.out_width());
    let mut out = Vec::new();
    for r in 0..g.patch() {
        let (c, ki, kj) = (r / (k * k), r / k % k, r % k);
        for pos in 0..g.positions() {
            let h = (pos / ow * g.stride + ki) as isize - g.padding as isize;
            let w = (pos % ow * g.stride + kj) as isize - g.padding as isize;
            let inside = (0..g.height as isize).contains(&h) && (0..g.width as isize).contains(&w);
            let at = inside.then(|| (c * g.height + h as usize) * g.width + w as usize);
            out.push((r, pos, at));
        }
    }
    out
}

/// The input gradient of one example with weights `w` (`C_out x K`) and output gradients `gi`
/// (`C_out x T`): `dx[c, h, w] = sum_{o, i, j} w[o, c, i, j] g[o, r, s]` over the output
/// positions `(r, s)` that read input `(h, w)` through kernel value `(i, j)`.
pub(super) fn input_grad(g: &ConvGeometry, w: &[f32], gi: &[f32]) -> Vec<f32> {
    let (t, kk, co) = g.dims();
    let mut dx = vec![0.0; g.input_len()];
    for (r, pos, at) in taps(g) {
        let Some(at) = at else { continue };
        for o in 0..co {
            dx[at] += w[o * kk + r] * gi[o * t + pos];
        }
    }
    dx
}

/// `U G^T` (`K x C_out`) of one example `x` with output gradients `gi` (`C_out x T`): its
/// weight gradient, transposed, by loops over every index of the definition.
pub(super) fn weight_grad_transposed(g: &ConvGeometry, x: &[f32], gi: &[f32]) -> Vec<f32> {
    let (t, kk, co) = g.dims();
    let mut out = vec![0.0; kk * co];
    for (r, pos, at) in taps(g) {
        let Some(at) = at else { continue };
        for o in 0..co {
            out[r * co + o] += x[at] * gi[o * t + pos];
        }
    }
    out
}
