//! The per-example products of a convolution without unfolding a whole example: the output
//! positions are taken [`COLS`] at a time, their slice of the unfolding (or of the output
//! gradients) is built in a small buffer that stays in cache, and register tiles multiply it
//! with the other operand read as stored. Used where the tiles run (AVX-512); elsewhere the
//! layer unfolds whole examples and calls the general matrix product.

use super::geometry::ConvGeometry;
use super::padded::{self, Segment};
use super::tile::{self, Broadcast, Rows, COLS};

/// Buffers of one thread's products (reused from example to example).
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// Slice of an unfolding: `K x COLS`.
    panel: Vec<f32>,
    /// Slice of the output gradients, `C_out x COLS` or transposed.
    grads: Vec<f32>,
    /// Transposed weight gradient `K x C_out`.
    transposed: Vec<f32>,
    /// The example with its zero padding (its border stays zero).
    padded: Vec<f32>,
    /// The input gradient of an example, padded.
    padded_grad: Vec<f32>,
    /// The runs of the current slice of positions.
    segments: Vec<Segment>,
    /// A whole unfolding `K x T`, where the tiles do not run.
    pub unfolded: Vec<f32>,
}

impl Scratch {
    /// Copies example `x` into the padded buffer (sized, and its border zeroed, on first use
    /// for `g`).
    fn pad(&mut self, g: &ConvGeometry, x: &[f32]) {
        let len = padded::padded_len(g);
        if self.padded.len() != len {
            self.padded.clear();
            self.padded.resize(len, 0.0);
        }
        // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
        unsafe { padded::pad(g, x, &mut self.padded) };
    }

    /// Unfolds the positions `span` of the padded example into the panel.
    fn unfold(&mut self, g: &ConvGeometry, span: std::ops::Range<usize>) {
        padded::segments(g, span, &mut self.segments);
        // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
        unsafe { padded::unfold(g, &self.padded, &self.segments, &mut self.panel) };
    }
}

/// The output positions of `g`, [`COLS`] at a time.
fn spans(g: &ConvGeometry) -> impl Iterator<Item = std::ops::Range<usize>> {
    let t = g.positions();
    (0..t).step_by(COLS).map(move |t0| t0..t.min(t0 + COLS))
}

/// `Y = W U` (`C_out x T`) of one example `x`, with `w` the weights (`C_out x K`).
pub(super) fn forward(g: &ConvGeometry, w: &[f32], x: &[f32], s: &mut Scratch, y: &mut [f32]) {
    let (t, kk, co) = g.dims();
    s.panel.resize(kk * COLS, 0.0);
    s.pad(g, x);
    for span in spans(g) {
        let n = span.len();
        s.unfold(g, span.clone());
        tile::product(
            (co, kk, n),
            Broadcast {
                data: w,
                step: 1,
                stride: kk,
            },
            Rows {
                data: &s.panel,
                ld: COLS,
            },
            Rows {
                data: &mut y[span.start..],
                ld: t,
            },
            false,
        );
    }
}

/// The weight gradient `G U^T` (`C_out x K`) of one example `x` with output gradients `gi`
/// (`C_out x T`), into `out`: `U G^T` (`K x C_out`) is summed over the slices of positions,
/// then transposed.
pub(super) fn weight_grad(
    g: &ConvGeometry,
    x: &[f32],
    gi: &[f32],
    s: &mut Scratch,
    out: &mut [f32],
) {
    let (t, kk, co) = g.dims();
    s.panel.resize(kk * COLS, 0.0);
    s.grads.resize(COLS * co + COLS, 0.0);
    s.transposed.resize(kk * co, 0.0);
    s.pad(g, x);
    for span in spans(g) {
        let n = span.len();
        s.unfold(g, span.clone());
        transpose(&gi[span.start..], t, (co, n), &mut s.grads);
        for o0 in (0..co).step_by(COLS) {
            tile::product(
                (kk, n, COLS.min(co - o0)),
                Broadcast {
                    data: &s.panel,
                    step: 1,
                    stride: COLS,
                },
                Rows {
                    data: &s.grads[o0..],
                    ld: co,
                },
                Rows {
                    data: &mut s.transposed[o0..],
                    ld: co,
                },
                span.start > 0,
            );
        }
    }
    for (o, row) in out.chunks_exact_mut(kk).take(co).enumerate() {
        for (k, v) in row.iter_mut().enumerate() {
            *v = s.transposed[k * co + o];
        }
    }
}

/// Adds the input gradient `fold(W^T G)` of one example with output gradients `gi`
/// (`C_out x T`) into `dx`, with `w` the weights (`C_out x K`).
pub(super) fn input_grad(g: &ConvGeometry, w: &[f32], gi: &[f32], s: &mut Scratch, dx: &mut [f32]) {
    let (t, kk, co) = g.dims();
    s.panel.resize(kk * COLS, 0.0);
    s.grads.resize(co * COLS, 0.0);
    s.padded_grad.clear();
    s.padded_grad.resize(padded::padded_len(g), 0.0);
    for span in spans(g) {
        let n = span.len();
        // the tile reads COLS values of every row: the last slice may need a copy
        let grads = if span.start + COLS <= t {
            Rows {
                data: &gi[span.start..],
                ld: t,
            }
        } else {
            for (row, panel) in gi.chunks_exact(t).zip(s.grads.chunks_exact_mut(COLS)) {
                panel[..n].copy_from_slice(&row[span.clone()]);
            }
            Rows {
                data: &s.grads[..],
                ld: COLS,
            }
        };
        tile::product(
            (kk, co, n),
            Broadcast {
                data: w,
                step: kk,
                stride: 1,
            },
            grads,
            Rows {
                data: &mut s.panel,
                ld: COLS,
            },
            false,
        );
        padded::segments(g, span, &mut s.segments);
        // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
        unsafe { padded::fold(g, &s.panel, &s.segments, &mut s.padded_grad) };
    }
    // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
    unsafe { padded::unpad_add(g, &s.padded_grad, dx) };
}

/// `out[j * rows + i] = m[i * ld + j]` for the `rows x cols` matrix `m` with rows `ld` apart.
fn transpose(m: &[f32], ld: usize, (rows, cols): (usize, usize), out: &mut [f32]) {
    let out = &mut out[..rows * cols];
    for (j, col) in out.chunks_exact_mut(rows).enumerate() {
        for (i, v) in col.iter_mut().enumerate() {
            *v = m[i * ld + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::Rng;

    /// `(x, w, gi)` for `g`: random normal values.
    fn operands(g: &ConvGeometry, rng: &mut Rng) -> [Vec<f32>; 3] {
        let (t, kk, co) = g.dims();
        [g.input_len(), co * kk, co * t].map(|n| (0..n).map(|_| rng.normal() as f32).collect())
    }

    /// Every index of the unfolding `(patch value, position) -> input index` (`None`: padding),
    /// by the definition of the convolution.
    fn taps(g: &ConvGeometry) -> Vec<(usize, usize, Option<usize>)> {
        let (k, ow) = (g.kernel, g.out_width());
        let mut out = Vec::new();
        for r in 0..g.patch() {
            let (c, ki, kj) = (r / (k * k), r / k % k, r % k);
            for pos in 0..g.positions() {
                let h = (pos / ow * g.stride + ki) as isize - g.padding as isize;
                let w = (pos % ow * g.stride + kj) as isize - g.padding as isize;
                let inside =
                    (0..g.height as isize).contains(&h) && (0..g.width as isize).contains(&w);
                let at = inside.then(|| (c * g.height + h as usize) * g.width + w as usize);
                out.push((r, pos, at));
            }
        }
        out
    }

    fn geometries() -> Vec<ConvGeometry> {
        vec![
            ConvGeometry::new((3, 7, 6), 4, 3, 1, 1),
            ConvGeometry::new((3, 7, 6), 9, 3, 2, 1),
            ConvGeometry::new((2, 9, 9), 3, 1, 2, 0),
            ConvGeometry::new((2, 11, 13), 40, 5, 1, 2),
            ConvGeometry::new((16, 8, 8), 16, 3, 1, 1),
            ConvGeometry::new((1, 40, 3), 2, 3, 3, 0),
        ]
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                "{what} {i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn products_by_slices_equal_the_definition() {
        if !tile::available() {
            return;
        }
        let mut rng = Rng::new(5);
        let mut s = Scratch::default();
        for g in geometries() {
            let (t, kk, co) = g.dims();
            let [x, w, gi] = operands(&g, &mut rng);
            let (mut y, mut dw, mut dx) = (
                vec![0.0; co * t],
                vec![0.0; co * kk],
                vec![0.0; g.input_len()],
            );
            let (mut y1, mut dw1, mut dx1) = (y.clone(), dw.clone(), vec![1.0; g.input_len()]);
            for (r, pos, at) in taps(&g) {
                let Some(at) = at else { continue };
                for o in 0..co {
                    y[o * t + pos] += w[o * kk + r] * x[at];
                    dw[o * kk + r] += gi[o * t + pos] * x[at];
                    dx[at] += w[o * kk + r] * gi[o * t + pos];
                }
            }
            forward(&g, &w, &x, &mut s, &mut y1);
            weight_grad(&g, &x, &gi, &mut s, &mut dw1);
            input_grad(&g, &w, &gi, &mut s, &mut dx1);
            dx1.iter_mut().for_each(|v| *v -= 1.0);
            close(&y1, &y, &format!("{g:?} output"));
            close(&dw1, &dw, &format!("{g:?} weight gradient"));
            close(&dx1, &dx, &format!("{g:?} input gradient"));
        }
    }
}
