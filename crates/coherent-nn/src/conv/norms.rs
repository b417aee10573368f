//! Per-example squared norms of a convolution, without or with materialising the gradients.
//!
//! With `G_i` (`C_out x T`) and `U_i` (`T x K`) as in the layer's documentation,
//! `|g_i|^2 = |G_i U_i|^2_F = <U_i U_i^T, G_i^T G_i>_F`: the "ghost" form costs `T^2 (K +
//! C_out)` per example and never forms `g_i`; materialising costs `C_out T K`. The ghost form
//! wins when the output has few positions compared with the layer's size, i.e. deep layers
//! (Li, Tramer, Liang and Hashimoto 2022, "Large Language Models Can Be Strong Differentially
//! Private Learners", ghost clipping). The bias adds `|G_i 1|^2` either way.

use super::implicit::{self, with_scratch};
use super::tile;
use super::trace::ConvTrace;
use crate::kernels::{matmul_on, sum, Layout, Mat};
use rayon::prelude::*;

/// How per-example squared norms of a convolution are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormMethod {
    /// The cheaper of the two, by operation count.
    #[default]
    Auto,
    /// `<U_i U_i^T, G_i^T G_i>`, without materialising `g_i`.
    Ghost,
    /// `|G_i U_i|^2` from the materialised gradient.
    Materialize,
}

impl ConvTrace {
    /// Whether the ghost form is used: by [`NormMethod::Auto`] where it costs fewer operations
    /// than materialising, and never where the products give the norms for nothing.
    pub(super) fn ghost(&self) -> bool {
        let (t, kk, co) = self.geom.dims();
        match self.method {
            NormMethod::Auto => !self.norms_in_products() && t * (kk + co) < co * kk,
            NormMethod::Ghost => true,
            NormMethod::Materialize => false,
        }
    }

    /// `|g_i|^2` of every example into `out`: the weight norms the backward pass computed
    /// with the summed gradient where it formed every example's product, the ghost form
    /// elsewhere.
    pub(super) fn norms_into(&self, out: &mut [f32]) {
        let (t, kk, co) = self.geom.dims();
        let bias_norm = |gi: &[f32]| -> f32 {
            if self.bias {
                gi.chunks_exact(t).map(|row| sum(row).powi(2)).sum::<f32>()
            } else {
                0.0
            }
        };
        if self.norms_now {
            out.par_iter_mut().enumerate().for_each(|(i, norm)| {
                *norm = self.weight_norms[i] + bias_norm(self.output_grad(i));
            });
            return;
        }
        if tile::available() && implicit::ghost_in_tiles(&self.geom) {
            out.par_iter_mut().enumerate().for_each(|(i, norm)| {
                let (x, gi) = (self.input_of(i), self.output_grad(i));
                *norm =
                    with_scratch(|s| implicit::ghost_norm(&self.geom, x, gi, s)) + bias_norm(gi);
            });
            return;
        }
        out.par_iter_mut().enumerate().for_each_init(
            || (vec![0.0; t * t], vec![0.0; t * t], Vec::new()),
            |(uu, gg, u), (i, norm)| {
                let (gi, ui) = (self.output_grad(i), self.unfold(i, u));
                column_gram(ui, (kk, t), uu);
                column_gram(gi, (co, t), gg);
                let s: f32 = uu.iter().zip(gg.iter()).map(|(x, y)| x * y).sum();
                *norm = s + bias_norm(gi);
            },
        );
    }
}

/// `X^T X` (`cols x cols`) of `x` stored `rows x cols`, on the calling thread.
fn column_gram(x: &[f32], (rows, cols): (usize, usize), out: &mut [f32]) {
    matmul_on(
        (cols, rows, cols),
        Mat {
            data: x,
            layout: Layout::Transposed,
        },
        Mat {
            data: x,
            layout: Layout::Normal,
        },
        out,
        false,
        false,
    );
}
