//! The shapes of a convolution: sizes of its input, output, patches and positions.

/// Shapes of a convolution: square kernel, equal stride and padding on both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub in_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl ConvGeometry {
    /// A `kernel`x`kernel` convolution to `out_channels` channels, with `stride` and `padding`,
    /// of an input of `(channels, height, width)`.
    pub fn new(
        (in_channels, height, width): (usize, usize, usize),
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> ConvGeometry {
        ConvGeometry {
            in_channels,
            height,
            width,
            out_channels,
            kernel,
            stride,
            padding,
        }
    }

    /// The convolution whose output is this one's input gradient, for stride 1 and padding
    /// below the kernel size: over the output gradients (`C_out x out_height x out_width`),
    /// to `C_in` channels, with the kernel flipped and transposed ([`Self::adjoint_weights`])
    /// and padding `k - 1 - p`.
    pub fn adjoint(&self) -> Option<ConvGeometry> {
        (self.stride == 1 && self.padding < self.kernel).then(|| {
            ConvGeometry::new(
                (self.out_channels, self.out_height(), self.out_width()),
                self.in_channels,
                self.kernel,
                1,
                self.kernel - 1 - self.padding,
            )
        })
    }

    /// The weights of [`Self::adjoint`] from this convolution's weights `w` (`C_out x C_in k
    /// k`): `w'[c][o][i][j] = w[o][c][k-1-i][k-1-j]`, so each `k x k` kernel is the original
    /// one read backwards, moved from place `(o, c)` to place `(c, o)`.
    pub fn adjoint_weights(&self, w: &[f32]) -> Vec<f32> {
        let (kk, ci, co) = (
            self.kernel * self.kernel,
            self.in_channels,
            self.out_channels,
        );
        let mut out = vec![0.0; co * ci * kk];
        for (o, wo) in w[..co * ci * kk].chunks_exact(ci * kk).enumerate() {
            for (c, kernel) in wo.chunks_exact(kk).enumerate() {
                let to = &mut out[(c * co + o) * kk..][..kk];
                to.iter_mut()
                    .zip(kernel.iter().rev())
                    .for_each(|(t, v)| *t = *v);
            }
        }
        out
    }

    /// Output height.
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output positions `T`.
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Values of one patch `K = C_in k k`.
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Features of one input example.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Features of one output example.
    pub fn output_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    /// Whether the kernel fits the padded input.
    pub fn is_valid(&self) -> bool {
        // checked: sizes come from manifests, and a sum that wraps around must not pass
        let span = |n: usize| self.padding.checked_mul(2).and_then(|p| p.checked_add(n));
        let patch = self.kernel.checked_mul(self.kernel);
        self.kernel > 0
            && self.stride > 0
            && span(self.height).is_some_and(|s| s >= self.kernel)
            && span(self.width).is_some_and(|s| s >= self.kernel)
            && patch
                .and_then(|k| k.checked_mul(self.in_channels))
                .is_some()
    }

    /// `(T, K, C_out)`: output positions, patch values and output channels.
    pub(super) fn dims(&self) -> (usize, usize, usize) {
        (self.positions(), self.patch(), self.out_channels)
    }
}

impl Default for ConvGeometry {
    /// A 1x1 convolution of one channel on a 1x1 input.
    fn default() -> ConvGeometry {
        ConvGeometry::new((1, 1, 1), 1, 1, 1, 0)
    }
}

/// Range of output columns `ow` whose input column `ow * stride + offset - padding` lies
/// inside `0..len`.
pub(super) fn valid(
    out: usize,
    stride: usize,
    offset: usize,
    padding: usize,
    len: usize,
) -> std::ops::Range<usize> {
    let lo = padding.saturating_sub(offset).div_ceil(stride);
    let hi = if len + padding > offset {
        (len + padding - offset - 1) / stride + 1
    } else {
        0
    };
    lo.min(out)..hi.min(out).max(lo.min(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges_keep_exactly_the_columns_inside_the_input() {
        for (stride, offset, padding, len) in [(1, 0, 1, 5), (2, 2, 1, 6), (3, 0, 2, 4)] {
            let out = (len + 2 * padding - 3) / stride + 1;
            let range = valid(out, stride, offset, padding, len);
            for q in 0..out {
                let col = (q * stride + offset) as isize - padding as isize;
                let inside = col >= 0 && (col as usize) < len;
                assert_eq!(
                    range.contains(&q),
                    inside,
                    "{stride} {offset} {padding} {q}"
                );
            }
        }
    }

    #[test]
    fn the_adjoint_weights_are_the_kernels_flipped_and_transposed() {
        for (ci, co, k) in [(3, 4, 3), (2, 5, 1), (4, 2, 5)] {
            let g = ConvGeometry::new((ci, 9, 9), co, k, 1, k / 2);
            let w: Vec<f32> = (0..co * ci * k * k).map(|v| v as f32).collect();
            let got = g.adjoint_weights(&w);
            for (c, o, i, j) in (0..ci).flat_map(|c| {
                (0..co)
                    .flat_map(move |o| (0..k).flat_map(move |i| (0..k).map(move |j| (c, o, i, j))))
            }) {
                let want = w[((o * ci + c) * k + (k - 1 - i)) * k + (k - 1 - j)];
                assert_eq!(got[((c * co + o) * k + i) * k + j], want, "{c} {o} {i} {j}");
            }
        }
    }
}
