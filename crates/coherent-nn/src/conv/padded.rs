//! Slices of an unfolding built from a zero-padded copy of the example, on AVX-512: with the
//! padding in memory, every output row reads one contiguous run of each input line (for
//! stride 1), so a slice of [`COLS`] positions is a few short vector copies per patch value,
//! with no bounds to test. Folding a slice back is the same walk, adding.

use super::geometry::ConvGeometry;
use super::tile::COLS;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::ops::Range;

/// A run of consecutive output positions on one output row: its place in the slice, its row,
/// its first column and its length.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    offset: usize,
    row: usize,
    col: usize,
    len: usize,
}

/// The runs of the output positions `span` (at most [`COLS`]), one per output row, into `out`.
pub(super) fn segments(g: &ConvGeometry, span: Range<usize>, out: &mut Vec<Segment>) {
    out.clear();
    let ow = g.out_width();
    let mut pos = span.start;
    while pos < span.end {
        let (row, col) = (pos / ow, pos % ow);
        let len = (ow - col).min(span.end - pos);
        out.push(Segment {
            offset: pos - span.start,
            row,
            col,
            len,
        });
        pos += len;
    }
}

/// Height and width of the padded input.
fn padded_dims(g: &ConvGeometry) -> (usize, usize) {
    (g.height + 2 * g.padding, g.width + 2 * g.padding)
}

/// Where row `(c, ki, kj)` of the unfolding of output position 0 starts in the padded
/// example, for every patch value.
pub(super) fn offsets(g: &ConvGeometry) -> Vec<usize> {
    let (hp, wp) = padded_dims(g);
    let k = g.kernel;
    (0..g.patch())
        .map(|r| (r / (k * k) * hp + r / k % k) * wp + r % k)
        .collect()
}

/// Values of one padded example.
pub(super) fn padded_len(g: &ConvGeometry) -> usize {
    let (hp, wp) = padded_dims(g);
    g.in_channels * hp * wp
}

/// Where every input line starts in the padded example (inside its border) and in the
/// example: `(padded, unpadded)` offsets of `W` values.
fn lines(g: &ConvGeometry) -> impl Iterator<Item = (usize, usize)> {
    let (hp, wp) = padded_dims(g);
    let (p, h, w) = (g.padding, g.height, g.width);
    (0..g.in_channels * h).map(move |line| {
        let (c, row) = (line / h, line % h);
        ((c * hp + row + p) * wp + p, line * w)
    })
}

/// Copies example `x` inside the zero border of `out` (whose border must already be zero:
/// a buffer first sized for this geometry is all zero, and nothing here writes its border).
///
/// # Safety
/// AVX-512F must be available.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub(super) unsafe fn pad(g: &ConvGeometry, x: &[f32], out: &mut [f32]) {
    let w = g.width;
    for (at, from) in lines(g) {
        copy(&mut out[at..at + w], &x[from..from + w]);
    }
}

/// Adds the inside of the padded gradient `padded` into `dx`.
///
/// # Safety
/// AVX-512F must be available.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub(super) unsafe fn unpad_add(g: &ConvGeometry, padded: &[f32], dx: &mut [f32]) {
    let w = g.width;
    for (from, at) in lines(g) {
        add(&mut dx[at..at + w], &padded[from..from + w]);
    }
}

/// The columns `segs` of the unfolding of the padded example `xp` into `panel`, one row of
/// [`COLS`] values per patch value.
///
/// # Safety
/// AVX-512F must be available.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub(super) unsafe fn unfold(g: &ConvGeometry, xp: &[f32], segs: &[Segment], panel: &mut [f32]) {
    walk(g, segs, |r, seg, src| {
        let dst = &mut panel[r * COLS + seg.offset..][..seg.len];
        match g.stride {
            1 => copy(dst, &xp[src..src + seg.len]),
            2 => copy_even(dst, &xp[src..src + 2 * seg.len - 1]),
            s => {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = xp[src + j * s];
                }
            }
        }
    });
}

/// Where every output position's patch starts in the padded example, past where position 0's
/// does: for outputs of at most sixteen positions whose patches all start within 32 values of
/// one another (small outputs such as 4x4 and 2x2 with a 3x3 kernel), so that [`unfold_small`]
/// picks a row of the unfolding out of two vectors.
pub(super) fn small_output(g: &ConvGeometry) -> Option<[u32; 16]> {
    let (t, ow, s) = (g.positions(), g.out_width(), g.stride);
    let wp = padded_dims(g).1;
    let at = |p: usize| (p / ow * wp + p % ow) * s;
    if t == 0 || t > 16 || at(t - 1) >= 32 {
        return None;
    }
    Some(std::array::from_fn(|p| at(p.min(t - 1)) as u32))
}

/// The unfolding of the padded example `xp` (all `t` positions, see [`small_output`], whose
/// `starts` are given) into columns `col..col + t` of `panel` (one row of [`COLS`] values per
/// patch value, whose starts in `xp` are `offsets`): each row two loads, one permutation and
/// one store.
///
/// # Safety
/// AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn unfold_small(
    (xp, offsets): (&[f32], &[usize]),
    (starts, t): ([u32; 16], usize),
    panel: &mut [f32],
    col: usize,
) {
    let rows = offsets.len();
    assert!(
        t <= 16 && col + t <= COLS,
        "unfold_small: {t} columns at {col}"
    );
    assert!(panel.len() >= rows * COLS, "unfold_small: panel too short");
    assert!(
        offsets.iter().all(|&o| o + 32 <= xp.len()),
        "unfold_small: padded example too short"
    );
    // SAFETY: `starts` has 16 values.
    let index = unsafe { _mm512_loadu_si512(starts.as_ptr().cast()) };
    let mask = ((1u32 << t) - 1) as __mmask16;
    let (x, out) = (xp.as_ptr(), panel.as_mut_ptr());
    for (r, &o) in offsets.iter().enumerate() {
        // SAFETY: 32 values from `o` lie in `xp`, and `t` from `r COLS + col` in `panel`
        // (asserted above).
        unsafe {
            let (lo, hi) = (_mm512_loadu_ps(x.add(o)), _mm512_loadu_ps(x.add(o + 16)));
            let row = _mm512_permutex2var_ps(lo, index, hi);
            _mm512_mask_storeu_ps(out.add(r * COLS + col), mask, row);
        }
    }
}

/// A block of 16 consecutive output positions of a stride-1 convolution whose patches all
/// start within 32 values of the first one's: where the first starts in the padded example,
/// and where the others start past it (the last position repeated in a short last block).
pub(super) type Block = (usize, [u32; 16]);

/// The blocks of 16 output positions of `g` (stride 1), where every block's patches start
/// within 32 values of one another (each row of a block's unfolding is then one permutation of
/// two vectors, [`unfold_blocks`]); `None` where some block's do not.
pub(super) fn position_blocks(g: &ConvGeometry) -> Option<Vec<Block>> {
    let (t, ow) = (g.positions(), g.out_width());
    if g.stride != 1 || t == 0 {
        return None;
    }
    let wp = padded_dims(g).1;
    let at = |p: usize| p / ow * wp + p % ow;
    (0..t)
        .step_by(16)
        .map(|first| {
            let start = at(first);
            let starts = std::array::from_fn(|j| (at((first + j).min(t - 1)) - start) as u32);
            (starts[15] < 32).then_some((start, starts))
        })
        .collect()
}

/// The unfolding of the positions of `blocks` (`n` of them, the blocks of one slice of
/// [`COLS`]) of the padded example `xp` into `panel` (one row of [`COLS`] values per patch
/// value, whose starts in `xp` are `offsets`): each row of each block two loads, one
/// permutation and one store.
///
/// # Safety
/// AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn unfold_blocks(
    (xp, offsets): (&[f32], &[usize]),
    (blocks, n): (&[Block], usize),
    panel: &mut [f32],
) {
    let rows = offsets.len();
    assert!(
        n <= COLS && n <= 16 * blocks.len() && panel.len() >= rows * COLS,
        "unfold_blocks: {n} columns in {} blocks",
        blocks.len()
    );
    let reach = blocks.iter().map(|b| b.0 + 32).max().unwrap_or(0);
    assert!(
        offsets.iter().all(|&o| o + reach <= xp.len()),
        "unfold_blocks: padded example too short"
    );
    let out = panel.as_mut_ptr();
    for (j, (start, starts)) in blocks.iter().enumerate() {
        // SAFETY: `starts` has 16 values.
        let index = unsafe { _mm512_loadu_si512(starts.as_ptr().cast()) };
        let mask = ((1u32 << n.saturating_sub(16 * j).min(16)) - 1) as __mmask16;
        let x = xp[*start..].as_ptr();
        for (r, &o) in offsets.iter().enumerate() {
            // SAFETY: 32 values from `start + o` lie in `xp`, and the block's columns of row
            // `r` in `panel` (asserted above).
            unsafe {
                let (lo, hi) = (_mm512_loadu_ps(x.add(o)), _mm512_loadu_ps(x.add(o + 16)));
                let row = _mm512_permutex2var_ps(lo, index, hi);
                _mm512_mask_storeu_ps(out.add(r * COLS + 16 * j), mask, row);
            }
        }
    }
}

/// [`unfold_blocks`], value by value (where the tiles do not run, nothing calls it).
///
/// # Safety
/// None needed; `unsafe` to match the vector version.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn unfold_blocks(
    (xp, offsets): (&[f32], &[usize]),
    (blocks, n): (&[Block], usize),
    panel: &mut [f32],
) {
    for (j, (start, starts)) in blocks.iter().enumerate() {
        for (r, &o) in offsets.iter().enumerate() {
            for (l, &at) in starts
                .iter()
                .enumerate()
                .take(n.saturating_sub(16 * j).min(16))
            {
                panel[r * COLS + 16 * j + l] = xp[start + o + at as usize];
            }
        }
    }
}

/// Adds the columns `segs` of an unfolding (`panel`, one row of [`COLS`] values per patch
/// value) back onto the padded example gradient `dxp`: the adjoint of [`unfold`].
///
/// # Safety
/// AVX-512F must be available.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub(super) unsafe fn fold(g: &ConvGeometry, panel: &[f32], segs: &[Segment], dxp: &mut [f32]) {
    walk(g, segs, |r, seg, dst| {
        let src = &panel[r * COLS + seg.offset..][..seg.len];
        match g.stride {
            1 => add(&mut dxp[dst..dst + seg.len], src),
            2 => add_even(&mut dxp[dst..dst + 2 * seg.len - 1], src),
            s => {
                for (j, v) in src.iter().enumerate() {
                    dxp[dst + j * s] += v;
                }
            }
        }
    });
}

/// Calls `f(r, segment, start)` for every patch value `r` and every segment, `start` being
/// where the segment's run begins in the padded example.
#[inline(always)]
fn walk(g: &ConvGeometry, segs: &[Segment], mut f: impl FnMut(usize, &Segment, usize)) {
    let (hp, wp) = padded_dims(g);
    let (k, s) = (g.kernel, g.stride);
    let mut r = 0;
    for c in 0..g.in_channels {
        for ki in 0..k {
            for kj in 0..k {
                let base = (c * hp + ki) * wp + kj;
                for seg in segs {
                    f(r, seg, base + seg.row * s * wp + seg.col * s);
                }
                r += 1;
            }
        }
    }
}

/// `dst[j] = src[2 j]` (`src` holds `2 dst.len() - 1` values).
#[cfg(not(target_arch = "x86_64"))]
fn copy_even(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut()
        .zip(src.iter().step_by(2))
        .for_each(|(d, v)| *d = *v);
}

/// `dst[2 j] += src[j]` (`dst` holds `2 src.len() - 1` values).
#[cfg(not(target_arch = "x86_64"))]
fn add_even(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut()
        .step_by(2)
        .zip(src)
        .for_each(|(d, v)| *d += v);
}

/// `dst = src`, sixteen lanes at a time (the last ones masked).
#[cfg(not(target_arch = "x86_64"))]
fn copy(dst: &mut [f32], src: &[f32]) {
    dst.copy_from_slice(src);
}

/// `dst += src`.
#[cfg(not(target_arch = "x86_64"))]
fn add(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
}

/// `dst = src`, sixteen lanes at a time (the last ones masked).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn copy(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "copy lengths");
    for (d, s) in dst.chunks_mut(16).zip(src.chunks(16)) {
        let m = ((1u32 << d.len()) - 1) as __mmask16;
        // SAFETY: the mask covers exactly the chunk's values.
        unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr(), m, _mm512_maskz_loadu_ps(m, s.as_ptr())) };
    }
}

/// `dst += src`, sixteen lanes at a time (the last ones masked).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn add(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add lengths");
    for (d, s) in dst.chunks_mut(16).zip(src.chunks(16)) {
        let m = ((1u32 << d.len()) - 1) as __mmask16;
        // SAFETY: the mask covers exactly the chunk's values.
        unsafe {
            let sum = _mm512_add_ps(
                _mm512_maskz_loadu_ps(m, d.as_ptr()),
                _mm512_maskz_loadu_ps(m, s.as_ptr()),
            );
            _mm512_mask_storeu_ps(d.as_mut_ptr(), m, sum);
        }
    }
}

/// Lanes `0, 2, .., 30` of two vectors (the first's even lanes, then the second's).
#[cfg(target_arch = "x86_64")]
const EVEN_LANES: [u32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];

/// Values `0, 0, 1, 1, .., 7, 7` and `8, 8, .., 15, 15` of a vector: lane `2 i` of the first
/// is value `i`, of the second value `8 + i`.
#[cfg(target_arch = "x86_64")]
const SPREAD_LANES: [[u32; 16]; 2] = [
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7],
    [8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15],
];

/// The masks of the two vectors that hold the values `0, 2, .., 2 (n - 1)` of a run (`n` at
/// most 16), each lane read where it is one of them or lies between two of them.
#[cfg(target_arch = "x86_64")]
fn even_masks(n: usize) -> (__mmask16, __mmask16) {
    let lanes = 2 * n - 1; // up to and including the last even value
    let lo = (1u32 << lanes.min(16)) - 1;
    let hi = (1u32 << lanes.saturating_sub(16)) - 1;
    (lo as __mmask16, hi as __mmask16)
}

/// `dst[j] = src[2 j]` (`src` holds `2 dst.len() - 1` values), sixteen at a time: two loads
/// and one permutation.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn copy_even(dst: &mut [f32], src: &[f32]) {
    assert_eq!(src.len() + 1, 2 * dst.len(), "copy_even lengths");
    // SAFETY: 16 values.
    let index = unsafe { _mm512_loadu_si512(EVEN_LANES.as_ptr().cast()) };
    for (q, d) in dst.chunks_mut(16).enumerate() {
        let (lo, hi) = even_masks(d.len());
        let m = ((1u32 << d.len()) - 1) as __mmask16;
        // SAFETY: the masks cover values `32 q ..= 32 q + 2 (d.len() - 1)` of `src`, which it
        // holds, and the chunk's values of `dst`.
        unsafe {
            let at = src.as_ptr().add(32 * q);
            let (a, b) = (
                _mm512_maskz_loadu_ps(lo, at),
                _mm512_maskz_loadu_ps(hi, at.add(16)),
            );
            _mm512_mask_storeu_ps(d.as_mut_ptr(), m, _mm512_permutex2var_ps(a, index, b));
        }
    }
}

/// `dst[2 j] += src[j]` (`dst` holds `2 src.len() - 1` values), sixteen at a time: the values
/// spread onto the even lanes of two vectors, added there, and only those lanes stored.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn add_even(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len() + 1, 2 * src.len(), "add_even lengths");
    const EVEN: u32 = 0x5555;
    // SAFETY: 16 values each.
    let (first, second) = unsafe {
        (
            _mm512_loadu_si512(SPREAD_LANES[0].as_ptr().cast()),
            _mm512_loadu_si512(SPREAD_LANES[1].as_ptr().cast()),
        )
    };
    for (q, v) in src.chunks(16).enumerate() {
        let (lo, hi) = even_masks(v.len());
        let m = ((1u32 << v.len()) - 1) as __mmask16;
        // SAFETY: the masks cover the chunk's values of `src` and values `32 q ..= 32 q + 2
        // (v.len() - 1)` of `dst`, which it holds; only their even lanes are stored.
        unsafe {
            let values = _mm512_maskz_loadu_ps(m, v.as_ptr());
            let at = dst.as_mut_ptr().add(32 * q);
            for (half, (mask, spread)) in [(lo, first), (hi, second)].into_iter().enumerate() {
                let mask = mask & EVEN as __mmask16;
                let d = at.add(16 * half);
                let sum = _mm512_add_ps(
                    _mm512_maskz_loadu_ps(mask, d),
                    _mm512_permutexvar_ps(spread, values),
                );
                _mm512_mask_storeu_ps(d, mask, sum);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn every_other_value_is_copied_and_added_where_the_loop_would() {
        if !super::super::tile::available() {
            return; // the vector versions need AVX-512
        }
        for n in 1..=40 {
            let run: Vec<f32> = (0..2 * n - 1).map(|i| i as f32 + 0.5).collect();
            let mut got = vec![f32::NAN; n];
            // SAFETY: AVX-512F is available (checked above).
            unsafe { copy_even(&mut got, &run) };
            let want: Vec<f32> = run.iter().step_by(2).copied().collect();
            assert_eq!(got, want, "copy of {n} values");

            let values: Vec<f32> = (0..n).map(|j| 100.0 + j as f32).collect();
            let mut got = run.clone();
            // SAFETY: as above.
            unsafe { add_even(&mut got, &values) };
            let mut want = run.clone();
            for (j, v) in values.iter().enumerate() {
                want[2 * j] += v;
            }
            assert_eq!(got, want, "addition of {n} values");
        }
    }
}
