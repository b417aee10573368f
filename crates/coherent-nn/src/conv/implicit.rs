//! The per-example products of a convolution without unfolding a whole example: the output
//! positions are taken a slice at a time (at most [`COLS`]) and register tiles multiply the
//! slice's rows of the unfolding with the other operand, read as stored.
//!
//! The example is first copied inside a zero border. For stride 1 and output rows of at least
//! [`MIN_DIRECT_WIDTH`] positions, the slices run over [`wide`] positions (output rows as wide
//! as the padded input), where row `(c, ki, kj)` of the unfolding is a run of the padded
//! example itself: the products read it there, and the input gradient is added into a padded
//! gradient there, so nothing is unfolded at all; the weight gradient is then one product over
//! the wide positions that are output positions, its depth taken in runs of an output row.
//! (Where the output rows are whole vectors, or narrower than a vector
//! while the padded rows are wider, the forward pass takes a vector per row and skips most of
//! the wide positions that are none; where the layer has channels enough to pay for
//! unfolding blocks of 16 positions by permutation, all of them.) Otherwise a slice of the
//! unfolding is built in a small buffer that stays in cache (and folded back from it).
//! Used where the tiles run (AVX-512); elsewhere the layer unfolds whole examples and calls the
//! general matrix product.

use super::geometry::ConvGeometry;
use super::padded::{self, Segment};
use super::tile::{self, Broadcast, Rows, Runs, COLS};
use super::transpose::transpose;
use super::wide;
use std::ops::Range;

/// Buffers of one thread's products (reused from example to example).
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The example and the rows of its unfolding.
    unfolding: Unfolding,
    /// Output gradients (a slice of them, or all on wide positions, maybe transposed), or a
    /// slice of the outputs.
    grads: Vec<f32>,
    /// One example's transposed weight gradient `K x C_out`, for the caller.
    pub transposed: Vec<f32>,
    /// The input gradient of an example, padded.
    padded_grad: Vec<f32>,
    /// Where the rows of the operands other than the unfolding start.
    rows: [Vec<usize>; 2],
    /// A whole unfolding `K x T`, where the tiles do not run; a transposed one (`T x K`) for
    /// [`weight_grad`].
    pub unfolded: Vec<f32>,
    /// One example's gradient, for the caller.
    pub gradient: Vec<f32>,
}

thread_local! {
    /// Each thread's buffers, kept from layer to layer and step to step: a step allocates
    /// nothing for its products.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's buffers (fresh ones if they are already in use further up the
/// stack).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// One example, padded, and where the rows of a slice of its unfolding lie.
#[derive(Debug, Default)]
struct Unfolding {
    /// The geometry the buffers are laid out for.
    geom: Option<ConvGeometry>,
    /// The example inside a zero border (which stays zero), and [`COLS`] values of slack.
    padded: Vec<f32>,
    /// Where row `(c, ki, kj)` of the unfolding of output position 0 starts in `padded`.
    offsets: Vec<usize>,
    /// A slice of the unfolding (`K x COLS`), where it is built.
    panel: Vec<f32>,
    /// The runs of the slice in the panel.
    segments: Vec<Segment>,
    /// Where the rows of the panel start.
    panel_rows: Vec<usize>,
    /// The blocks of output positions the forward pass unfolds in the panel by permutation,
    /// where they pay ([`blocks_pay`]): each slice is then multiplied into the output
    /// straight, with no product spent on wide positions that are none.
    blocks: Option<Vec<padded::Block>>,
    /// A table of row starts for the products that set their own.
    rows: Vec<usize>,
}

impl Unfolding {
    /// Lays the buffers out for `g` (once per geometry).
    fn prepare(&mut self, g: &ConvGeometry) {
        if self.geom == Some(*g) {
            return;
        }
        self.geom = Some(*g);
        self.padded.clear();
        self.padded.resize(padded::padded_len(g) + COLS, 0.0);
        self.offsets = padded::offsets(g);
        self.panel.clear();
        self.panel.resize(g.patch() * COLS, 0.0);
        self.panel_rows = (0..g.patch()).map(|k| k * COLS).collect();
        self.blocks = (direct(g) && !wide::in_vector_pairs(g) && blocks_pay(g))
            .then(|| padded::position_blocks(g))
            .flatten();
    }

    /// Copies example `x` inside the zero border.
    fn load(&mut self, g: &ConvGeometry, x: &[f32]) {
        self.prepare(g);
        // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
        unsafe { padded::pad(g, x, &mut self.padded) };
    }

    /// Whether the slices of the forward pass run over wide positions: where [`direct`] and
    /// no blocks of positions are laid out.
    fn on_wide_positions(&self, g: &ConvGeometry) -> bool {
        direct(g) && self.blocks.is_none()
    }

    /// The rows of the unfolding for the positions `span` (wide positions where
    /// [`Unfolding::on_wide_positions`]): in the padded example, or built in the panel (by
    /// permutation where blocks of positions are laid out).
    fn slice(&mut self, g: &ConvGeometry, span: Range<usize>) -> Rows<'_, &[f32]> {
        if let Some(blocks) = &self.blocks {
            let n = span.len();
            let blocks = &blocks[span.start / 16..(span.start + n).div_ceil(16)];
            let xp = (&self.padded[..], &self.offsets[..]);
            // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
            unsafe { padded::unfold_blocks(xp, (blocks, n), &mut self.panel) };
            return Rows {
                data: &self.panel,
                rows: &self.panel_rows,
            };
        }
        if direct(g) {
            // row r of the slice starts `offsets[r]` past the slice's first wide position
            return Rows {
                data: &self.padded[span.start..],
                rows: &self.offsets,
            };
        }
        padded::segments(g, span, &mut self.segments);
        // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
        unsafe { padded::unfold(g, &self.padded, &self.segments, &mut self.panel) };
        Rows {
            data: &self.panel,
            rows: &self.panel_rows,
        }
    }
}

impl Unfolding {
    /// The unfoldings of the examples `xs` (each `input_len` values, all positions of each
    /// fitting in one slice together), side by side in the panel: example `e`'s positions in
    /// columns `e T ..`.
    fn panel_of(&mut self, g: &ConvGeometry, xs: &[f32]) -> Rows<'_, &[f32]> {
        let t = g.positions();
        let small = padded::small_output(g);
        if small.is_none() {
            padded::segments(g, 0..t, &mut self.segments);
        }
        for (e, x) in xs.chunks_exact(g.input_len()).enumerate() {
            self.load(g, x);
            // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
            unsafe {
                match small {
                    #[cfg(target_arch = "x86_64")]
                    Some(starts) => padded::unfold_small(
                        (&self.padded, &self.offsets),
                        (starts, t),
                        &mut self.panel,
                        e * t,
                    ),
                    _ => padded::unfold(g, &self.padded, &self.segments, &mut self.panel[e * t..]),
                }
            }
        }
        Rows {
            data: &self.panel,
            rows: &self.panel_rows,
        }
    }
}

/// How many examples share one slice of positions: where an example's positions are built
/// in the panel and fill at most half of a slice, as many as fit, so that small outputs (4x4,
/// 2x2) fill the tiles' columns together; 1 elsewhere.
pub(super) fn examples_per_slice(g: &ConvGeometry) -> usize {
    let t = g.positions();
    if direct(g) || t == 0 || 2 * t > COLS {
        1
    } else {
        COLS / t
    }
}

/// [`forward`] of the examples `xs` into `ys` (at most [`examples_per_slice`] of them, all in
/// one slice when more than one).
pub(super) fn forward_many(
    (g, w): (&ConvGeometry, &[f32]),
    xs: &[f32],
    s: &mut Scratch,
    ys: &mut [f32],
    add: bool,
) {
    let m = xs.len() / g.input_len();
    if m <= 1 {
        return forward((g, w), xs, s, ys, add);
    }
    let (t, kk, co) = g.dims();
    assert!(m * t <= COLS, "{m} examples of {t} positions in one slice");
    s.unfolding.prepare(g);
    s.grads.resize(co * COLS, 0.0);
    let [weights, outputs] = &mut s.rows;
    tile::product(
        (co, kk, m * t),
        Broadcast {
            data: w,
            rows: set(weights, (0..co).map(|o| o * kk)),
            step: 1,
        },
        s.unfolding.panel_of(g, xs),
        Rows {
            data: &mut s.grads[..],
            rows: set(outputs, (0..co).map(|o| o * COLS)),
        },
        false,
    );
    for (e, y) in ys.chunks_exact_mut(co * t).enumerate() {
        for (y, p) in y.chunks_exact_mut(t).zip(s.grads.chunks_exact(COLS)) {
            let p = &p[e * t..(e + 1) * t];
            if add {
                y.iter_mut().zip(p).for_each(|(y, p)| *y += p);
            } else {
                y.copy_from_slice(p);
            }
        }
    }
}

/// The sum of the transposed weight gradients `U_e G_e^T` (`K x C_out`) of the examples `xs`
/// with output gradients `gis` into `out`, or added to it with `add` (at most
/// [`examples_per_slice`] of them, one product over all their positions when more than one).
pub(super) fn weight_grads_transposed(
    g: &ConvGeometry,
    (xs, gis): (&[f32], &[f32]),
    s: &mut Scratch,
    out: &mut [f32],
    add: bool,
) {
    let (t, kk, co) = g.dims();
    let m = xs.len() / g.input_len();
    if m <= 1 {
        return weight_grad_transposed(g, xs, gis, s, out, add);
    }
    assert!(m * t <= COLS, "{m} examples of {t} positions in one slice");
    s.unfolding.prepare(g);
    s.grads.resize(COLS * co + COLS, 0.0);
    for (e, gi) in gis.chunks_exact(co * t).enumerate() {
        transpose(gi, t, (co, t), &mut s.grads[e * t * co..]);
    }
    let u = s.unfolding.panel_of(g, xs);
    let a = Broadcast {
        data: u.data,
        rows: u.rows,
        step: 1,
    };
    let runs = Runs::whole(m * t);
    transposed_product(
        (kk, m * t, co),
        (a, runs),
        &s.grads,
        &mut s.rows,
        out,
        (add, false),
    );
}

/// Whether [`ghost_norm`] takes examples of `g`: their unfolding fits in the panel (outputs
/// of at most [`COLS`] positions, not read on wide positions).
pub(super) fn ghost_in_tiles(g: &ConvGeometry) -> bool {
    !direct(g) && g.positions() <= COLS
}

/// The weight gradient `G U^T` (`C_out x K`, the layer's own order) of one example `x` with
/// output gradients `gi` into `out`, where [`ghost_in_tiles`] takes `g`: the example's
/// unfolding is built in the panel and transposed (`T x K`, small), and the tiles write the
/// gradient in place, with no transposition of the gradient itself.
///
/// # Panics
/// Unless [`ghost_in_tiles`] takes `g`, or if `out` is shorter than `C_out K`.
pub(super) fn weight_grad(
    g: &ConvGeometry,
    x: &[f32],
    gi: &[f32],
    s: &mut Scratch,
    out: &mut [f32],
) {
    let (t, kk, co) = g.dims();
    assert!(ghost_in_tiles(g), "a weight gradient in tiles of {g:?}");
    s.unfolding.prepare(g);
    let u = s.unfolding.panel_of(g, x);
    s.unfolded.resize(t * kk + COLS, 0.0);
    transpose(u.data, COLS, (kk, t), &mut s.unfolded);
    let [grads, positions] = &mut s.rows;
    let grads = set(grads, (0..co).map(|o| o * t));
    for k0 in (0..kk).step_by(COLS) {
        let a = Broadcast {
            data: gi,
            rows: grads,
            step: 1,
        };
        let b = Rows {
            data: &s.unfolded[..],
            rows: set(positions, (0..t).map(|q| q * kk + k0)),
        };
        let c = Rows {
            data: &mut *out,
            rows: set(&mut s.unfolding.rows, (0..co).map(|o| o * kk + k0)),
        };
        tile::product((co, t, COLS.min(kk - k0)), a, b, c, false);
    }
}

/// `|U G^T|^2 = <U^T U, G^T G>` of one example `x` with output gradients `gi`: the ghost form
/// of its weight gradient's squared norm, both Gram matrices (`T x T`) by the tiles.
///
/// # Panics
/// Unless [`ghost_in_tiles`] takes `g`.
pub(super) fn ghost_norm(g: &ConvGeometry, x: &[f32], gi: &[f32], s: &mut Scratch) -> f32 {
    let (t, kk, co) = g.dims();
    assert!(ghost_in_tiles(g), "ghost norm in tiles of {g:?}");
    // the output gradients with room for whole vectors past their last row, then both Grams
    s.grads.resize(co * t + COLS + 2 * t * COLS, 0.0);
    let (g_copy, grams) = s.grads.split_at_mut(co * t + COLS);
    g_copy[..co * t].copy_from_slice(gi);
    let (g_copy, (uu, gg)) = (&*g_copy, grams.split_at_mut(t * COLS));
    let [positions, gram_rows] = &mut s.rows;
    let (positions, gram_rows) = (
        set(positions, 0..t),
        set(gram_rows, (0..t).map(|p| p * COLS)),
    );
    s.unfolding.prepare(g);
    let u = s.unfolding.panel_of(g, x);
    let a = Broadcast {
        data: u.data,
        rows: positions,
        step: COLS,
    };
    gram((t, kk), a, u, gram_rows, uu);
    let a = Broadcast {
        data: g_copy,
        rows: positions,
        step: t,
    };
    let b = Rows {
        data: g_copy,
        rows: set(&mut s.unfolding.rows, (0..co).map(|o| o * t)),
    };
    gram((t, co), a, b, gram_rows, gg);
    let rows = uu.chunks_exact(COLS).zip(gg.chunks_exact(COLS)).take(t);
    let dot =
        |(u, g): (&[f32], &[f32])| u[..t].iter().zip(&g[..t]).map(|(a, b)| a * b).sum::<f32>();
    rows.map(dot).sum()
}

/// `out (t x t, rows at `rows`) = A^T B` over `depth` steps by the tiles.
fn gram(
    (t, depth): (usize, usize),
    a: Broadcast<'_>,
    b: Rows<'_, &[f32]>,
    rows: &[usize],
    out: &mut [f32],
) {
    let c = Rows { data: out, rows };
    tile::product((t, depth, t), a, b, c, false);
}

/// Output rows at least this wide are read in place on [`wide`] positions (the unused wide
/// positions cost at most a fifth of the products with a 3x3 kernel).
const MIN_DIRECT_WIDTH: usize = 8;

/// Whether slices are read in the padded example itself, on [`wide`] positions: stride 1 and
/// output rows of at least [`MIN_DIRECT_WIDTH`].
fn direct(g: &ConvGeometry) -> bool {
    g.stride == 1 && g.out_width() >= MIN_DIRECT_WIDTH
}

/// The slices of positions of `g` (wide positions where `wide`), at most [`COLS`] each.
fn spans(g: &ConvGeometry, wide: bool) -> impl Iterator<Item = Range<usize>> {
    let end = if wide { wide::len(g) } else { g.positions() };
    (0..end).step_by(COLS).map(move |p| p..end.min(p + COLS))
}

/// `table = values` (reusing its memory).
fn set(table: &mut Vec<usize>, values: impl Iterator<Item = usize>) -> &[usize] {
    table.clear();
    table.extend(values);
    table
}

/// `Y = W U` (`C_out x T`) of one example `x`, with `w` the weights (`C_out x K`), into `y`
/// (or added to it with `add`).
pub(super) fn forward(
    (g, w): (&ConvGeometry, &[f32]),
    x: &[f32],
    s: &mut Scratch,
    y: &mut [f32],
    add: bool,
) {
    let (t, kk, co) = g.dims();
    s.unfolding.load(g, x);
    if direct(g) && wide::in_vector_pairs(g) {
        return forward_in_pairs((g, w), s, y, add);
    }
    let on_wide = s.unfolding.on_wide_positions(g);
    s.grads.resize(co * COLS, 0.0);
    let [weights, outputs] = &mut s.rows;
    let weights = set(weights, (0..co).map(|o| o * kk));
    for span in spans(g, on_wide) {
        let (start, n) = (span.start, span.len());
        let a = Broadcast {
            data: w,
            rows: weights,
            step: 1,
        };
        let b = s.unfolding.slice(g, span.clone());
        if !on_wide {
            let c = Rows {
                data: &mut *y,
                rows: set(outputs, (0..co).map(|o| o * t + start)),
            };
            tile::product((co, kk, n), a, b, c, add);
            continue;
        }
        let c = Rows {
            data: &mut s.grads[..],
            rows: set(outputs, (0..co).map(|o| o * COLS)),
        };
        tile::product((co, kk, n), a, b, c, false);
        wide::gather(g, (&s.grads, COLS), span, y, add);
    }
}

/// [`forward`] of the loaded example where the output positions are taken in
/// [`wide::vector_pairs`]: two vectors of output positions at a time, read in the padded
/// example and written straight into `y`, so that few products or none are spent on
/// positions that are none, and nothing is gathered.
fn forward_in_pairs((g, w): (&ConvGeometry, &[f32]), s: &mut Scratch, y: &mut [f32], add: bool) {
    let (t, kk, co) = g.dims();
    let [weights, outputs] = &mut s.rows;
    let weights = set(weights, (0..co).map(|o| o * kk));
    let u = &mut s.unfolding;
    for pair in wide::vector_pairs(g) {
        let a = Broadcast {
            data: w,
            rows: weights,
            step: 1,
        };
        let b = Rows {
            data: &u.padded[pair.wide..],
            rows: &u.offsets,
        };
        let c = Rows {
            data: &mut *y,
            rows: set(outputs, (0..co).map(|o| o * t + pair.position)),
        };
        tile::product_in_pieces((co, kk, pair.len), a, b, c, add, pair.seconds);
    }
}

/// Whether unfolding the forward pass's positions in blocks ([`padded::unfold_blocks`]) costs
/// less than the wide positions that are none: a few instructions per patch value and 16
/// positions, against `C_out / 16` vector products per patch value and position, of which a
/// fraction `(k - 1) / (padded width)` is spent on wide positions that are none.
/// (ResNet-20's 8x8 layers: 64 x 2 against 8 x 10. The CNN's 14x14 layer, 32 x 4 against
/// 8 x 18, measured slower in blocks than on wide positions; it now takes a vector per row.)
fn blocks_pay(g: &ConvGeometry) -> bool {
    g.out_channels * (g.kernel - 1) >= 8 * wide::row(g)
}

/// The transposed weight gradient `U G^T` (`K x C_out`) of one example `x` with output
/// gradients `gi` (`C_out x T`), into `out` (or added to it with `add`): where [`direct`],
/// one product over all wide positions, whose sums stay in registers; elsewhere summed over
/// the slices of positions.
pub(super) fn weight_grad_transposed(
    g: &ConvGeometry,
    x: &[f32],
    gi: &[f32],
    s: &mut Scratch,
    out: &mut [f32],
    add: bool,
) {
    let (t, kk, co) = g.dims();
    if direct(g) {
        wide_weight_grad_transposed(g, (x, gi), s, out, (add, false));
        return;
    }
    s.unfolding.load(g, x);
    s.grads.resize(COLS * co + COLS, 0.0);
    for span in spans(g, direct(g)) {
        let n = span.len();
        transpose(&gi[span.start..], t, (co, n), &mut s.grads);
        let overwrite = span.start == 0 && !add;
        let unfolding = s.unfolding.slice(g, span);
        let a = Broadcast {
            data: unfolding.data,
            rows: unfolding.rows,
            step: 1,
        };
        transposed_product(
            (kk, n, co),
            (a, Runs::whole(n)),
            &s.grads,
            &mut s.rows,
            out,
            (!overwrite, false),
        );
    }
}

/// Whether [`weight_grad_transposed_and_norm`] takes examples of `g`: the weight gradient is
/// one product over all (wide) positions.
pub(super) fn norm_in_product(g: &ConvGeometry) -> bool {
    direct(g)
}

/// [`weight_grad_transposed`], returning the squared norm of the example's weight gradient
/// `|U G^T|^2`, taken from the product's sums in registers.
///
/// # Panics
/// Unless [`norm_in_product`] takes `g`.
pub(super) fn weight_grad_transposed_and_norm(
    g: &ConvGeometry,
    (x, gi): (&[f32], &[f32]),
    s: &mut Scratch,
    out: &mut [f32],
    add: bool,
) -> f32 {
    assert!(norm_in_product(g), "a norm in the product of {g:?}");
    wide_weight_grad_transposed(g, (x, gi), s, out, (add, true))
}

/// [`weight_grad_transposed`] where [`direct`]: one product over the wide positions that are
/// output positions ([`wide::output_runs`]), the output gradients spread onto them. Returns the
/// product's squared norm where `norm` asks for it (else 0).
fn wide_weight_grad_transposed(
    g: &ConvGeometry,
    (x, gi): (&[f32], &[f32]),
    s: &mut Scratch,
    out: &mut [f32],
    (add, norm): (bool, bool),
) -> f32 {
    let (_, kk, co) = g.dims();
    s.unfolding.load(g, x);
    wide::spread_transposed(g, gi, &mut s.grads, COLS);
    let a = Broadcast {
        data: &s.unfolding.padded,
        rows: &s.unfolding.offsets,
        step: 1,
    };
    let runs = wide::output_runs(g);
    transposed_product(
        (kk, wide::len(g), co),
        (a, runs),
        &s.grads,
        &mut s.rows,
        out,
        (add, norm),
    )
}

/// `out` (`K x C_out`) [+]= `a` (`depth x K`, by broadcasts) times the first `depth` rows of
/// `grads` (`depth x C_out`), over the steps `runs` of the depth, in products of at most
/// [`COLS`] columns; `tables` hold the rows. Returns the product's squared norm where `norm`
/// asks for it (else 0).
fn transposed_product(
    (kk, depth, co): (usize, usize, usize),
    (a, runs): (Broadcast<'_>, Runs),
    grads: &[f32],
    tables: &mut [Vec<usize>; 2],
    out: &mut [f32],
    (accumulate, norm): (bool, bool),
) -> f32 {
    let [rows, sums] = tables;
    let mut squares = 0.0;
    for o0 in (0..co).step_by(COLS) {
        let shape = (kk, depth, COLS.min(co - o0));
        let b = Rows {
            data: grads,
            rows: set(rows, (0..depth).map(|j| j * co + o0)),
        };
        let c = Rows {
            data: &mut *out,
            rows: set(sums, (0..kk).map(|k| k * co + o0)),
        };
        squares += tile::product_over_runs(shape, a, b, c, (accumulate, norm), runs);
    }
    squares
}

/// Adds the input gradient `fold(W^T G)` of one example with output gradients `gi`
/// (`C_out x T`) into `dx`, with `w` the weights (`C_out x K`).
pub(super) fn input_grad(g: &ConvGeometry, w: &[f32], gi: &[f32], s: &mut Scratch, dx: &mut [f32]) {
    let (t, kk, co) = g.dims();
    let u = &mut s.unfolding;
    u.prepare(g);
    s.padded_grad.clear();
    s.padded_grad.resize(padded::padded_len(g) + COLS, 0.0);
    let [grads, out] = &mut s.rows;
    let a = Broadcast {
        data: w,
        rows: set(out, 0..kk),
        step: kk,
    };
    if direct(g) {
        // the output gradients on wide positions, the input gradient added in place
        let lw = wide::len(g);
        wide::spread(g, gi, &mut s.grads, COLS);
        for span in spans(g, direct(g)) {
            let b = Rows {
                data: &s.grads[..],
                rows: set(grads, (0..co).map(|o| o * lw + span.start)),
            };
            let c = Rows {
                data: &mut s.padded_grad[span.start..],
                rows: &u.offsets,
            };
            tile::product((kk, co, span.len()), a, b, c, true);
        }
    } else {
        s.grads.resize(co * COLS, 0.0);
        for span in spans(g, direct(g)) {
            let n = span.len();
            // the tile reads whole vectors of every row: a short last slice is copied
            let b = if span.start + tile::read_width(n) <= t {
                Rows {
                    data: gi,
                    rows: set(grads, (0..co).map(|o| o * t + span.start)),
                }
            } else {
                for (row, panel) in gi.chunks_exact(t).zip(s.grads.chunks_exact_mut(COLS)) {
                    panel[..n].copy_from_slice(&row[span.clone()]);
                }
                Rows {
                    data: &s.grads[..],
                    rows: set(grads, (0..co).map(|o| o * COLS)),
                }
            };
            let c = Rows {
                data: &mut u.panel[..],
                rows: set(&mut u.rows, (0..kk).map(|k| k * COLS)),
            };
            tile::product((kk, co, n), a, b, c, false);
            padded::segments(g, span, &mut u.segments);
            // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
            unsafe { padded::fold(g, &u.panel, &u.segments, &mut s.padded_grad) };
        }
    }
    // SAFETY: the tiles (AVX-512F) are available wherever this module runs.
    unsafe { padded::unpad_add(g, &s.padded_grad, dx) };
}

#[cfg(test)]
mod tests {
    use super::super::definition::{
        input_grad as input_grad_by_definition, taps,
        weight_grad_transposed as weight_grad_by_definition,
    };
    use super::*;
    use coherent_core::Rng;

    /// `(x, w, gi)` for `g`: random normal values.
    fn operands(g: &ConvGeometry, rng: &mut Rng) -> [Vec<f32>; 3] {
        let (t, kk, co) = g.dims();
        [g.input_len(), co * kk, co * t].map(|n| (0..n).map(|_| rng.normal() as f32).collect())
    }

    /// Geometries with slices built in the panel, and read in place.
    fn geometries() -> Vec<ConvGeometry> {
        vec![
            // built in the panel: strides above 1, rows of fewer than 8 positions
            ConvGeometry::new((3, 7, 6), 4, 3, 1, 1),
            ConvGeometry::new((3, 7, 6), 9, 3, 2, 1),
            ConvGeometry::new((2, 9, 9), 3, 1, 2, 0),
            ConvGeometry::new((1, 40, 3), 2, 3, 3, 0),
            // read in place on wide positions, slices across rows
            ConvGeometry::new((2, 11, 13), 40, 5, 1, 2),
            ConvGeometry::new((16, 8, 8), 16, 3, 1, 1),
            ConvGeometry::new((3, 18, 20), 17, 3, 1, 1),
            ConvGeometry::new((2, 5, 42), 3, 3, 1, 0),
            ConvGeometry::new((2, 6, 36), 40, 5, 1, 2),
            // output rows of whole vectors, taken two vectors at a time
            ConvGeometry::new((2, 5, 16), 3, 3, 1, 1),
            ConvGeometry::new((3, 4, 32), 17, 3, 1, 1),
            ConvGeometry::new((2, 4, 50), 5, 3, 1, 0),
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
            let mut y = vec![0.0; co * t];
            for (r, pos, at) in taps(&g) {
                let Some(at) = at else { continue };
                for o in 0..co {
                    y[o * t + pos] += w[o * kk + r] * x[at];
                }
            }
            let (dw, dx) = (
                weight_grad_by_definition(&g, &x, &gi),
                input_grad_by_definition(&g, &w, &gi),
            );
            let (mut y1, mut dw1, mut dx1) =
                (y.clone(), vec![0.0; kk * co], vec![1.0; g.input_len()]);
            forward((&g, &w), &x, &mut s, &mut y1, false);
            let mut y2 = vec![1.0; co * t];
            forward((&g, &w), &x, &mut s, &mut y2, true);
            y2.iter_mut().for_each(|v| *v -= 1.0);
            close(&y2, &y, &format!("{g:?} output added"));
            weight_grad_transposed(&g, &x, &gi, &mut s, &mut dw1, false);
            input_grad(&g, &w, &gi, &mut s, &mut dx1);
            dx1.iter_mut().for_each(|v| *v -= 1.0);
            close(&y1, &y, &format!("{g:?} output"));
            close(&dw1, &dw, &format!("{g:?} weight gradient"));
            close(&dx1, &dx, &format!("{g:?} input gradient"));
            if norm_in_product(&g) {
                let mut dw2 = vec![1.0; kk * co];
                let norm = weight_grad_transposed_and_norm(&g, (&x, &gi), &mut s, &mut dw2, true);
                dw2.iter_mut().for_each(|v| *v -= 1.0);
                close(&dw2, &dw, &format!("{g:?} weight gradient added"));
                let want: f32 = dw.iter().map(|v| v * v).sum();
                close(
                    &[norm],
                    &[want],
                    &format!("{g:?} weight gradient's squared norm"),
                );
            }
        }
    }

    #[test]
    fn weight_gradients_of_small_outputs_in_the_layers_order_equal_the_definition() {
        if !tile::available() {
            return;
        }
        let mut rng = Rng::new(8);
        let mut s = Scratch::default();
        let deep = [
            ConvGeometry::new((16, 4, 4), 9, 3, 1, 1),
            ConvGeometry::new((5, 2, 2), 20, 3, 1, 1),
        ];
        let small = geometries().into_iter().filter(ghost_in_tiles);
        for g in small.chain(deep) {
            assert!(ghost_in_tiles(&g), "{g:?}");
            let (_, kk, co) = g.dims();
            let [x, _, gi] = operands(&g, &mut rng);
            let transposed = weight_grad_by_definition(&g, &x, &gi);
            let mut want = vec![0.0; co * kk];
            super::super::transpose::transpose(&transposed, co, (kk, co), &mut want);
            let mut got = vec![f32::NAN; co * kk];
            weight_grad(&g, &x, &gi, &mut s, &mut got);
            close(&got, &want, &format!("{g:?} weight gradient"));
        }
    }

    #[test]
    fn the_ghost_norm_is_the_squared_norm_of_the_weight_gradient() {
        if !tile::available() {
            return;
        }
        let mut rng = Rng::new(8);
        let mut s = Scratch::default();
        for g in [
            ConvGeometry::new((4, 2, 2), 6, 3, 1, 1),
            ConvGeometry::new((8, 4, 4), 40, 3, 1, 1),
            ConvGeometry::new((3, 7, 6), 9, 3, 2, 1),
            ConvGeometry::new((2, 5, 7), 3, 3, 1, 0),
        ] {
            let [x, _, gi] = operands(&g, &mut rng);
            let dw = weight_grad_by_definition(&g, &x, &gi);
            let want: f32 = dw.iter().map(|v| v * v).sum();
            assert!(ghost_in_tiles(&g), "{g:?}");
            let got = ghost_norm(&g, &x, &gi, &mut s);
            assert!((got - want).abs() < 1e-4 * want, "{g:?}: {got} vs {want}");
        }
        let wide = ConvGeometry::new((2, 9, 9), 3, 3, 1, 1);
        assert!(!ghost_in_tiles(&wide), "wide positions");
    }

    #[test]
    fn several_examples_in_one_slice_equal_the_definition() {
        if !tile::available() {
            return;
        }
        let mut rng = Rng::new(6);
        let mut s = Scratch::default();
        for g in [
            ConvGeometry::new((4, 2, 2), 6, 3, 1, 1),
            ConvGeometry::new((8, 4, 4), 5, 3, 1, 1),
            ConvGeometry::new((2, 4, 4), 3, 3, 2, 1),
            ConvGeometry::new((3, 7, 6), 9, 3, 2, 1),
            ConvGeometry::new((1, 40, 3), 2, 3, 3, 0),
        ] {
            let (t, kk, co) = g.dims();
            let m = examples_per_slice(&g);
            assert!(m > 1 && m * t <= COLS, "{g:?}: {m}");
            let ops: Vec<[Vec<f32>; 3]> = (0..m).map(|_| operands(&g, &mut rng)).collect();
            let w = &ops[0][1];
            let xs: Vec<f32> = ops.iter().flat_map(|o| o[0].clone()).collect();
            let gis: Vec<f32> = ops.iter().flat_map(|o| o[2].clone()).collect();
            let (mut y, mut dw) = (vec![0.0; m * co * t], vec![0.0; kk * co]);
            for (e, o) in ops.iter().enumerate() {
                for (r, pos, at) in taps(&g) {
                    let Some(at) = at else { continue };
                    for c in 0..co {
                        y[e * co * t + c * t + pos] += w[c * kk + r] * o[0][at];
                        dw[r * co + c] += o[2][c * t + pos] * o[0][at];
                    }
                }
            }
            let mut y1 = vec![1.0; m * co * t];
            forward_many((&g, w), &xs, &mut s, &mut y1, true);
            y1.iter_mut().for_each(|v| *v -= 1.0);
            close(&y1, &y, &format!("{g:?} outputs of {m} examples"));
            let mut dw1 = vec![0.5; kk * co];
            weight_grads_transposed(&g, (&xs, &gis), &mut s, &mut dw1, true);
            dw1.iter_mut().for_each(|v| *v -= 0.5);
            close(
                &dw1,
                &dw,
                &format!("{g:?} weight gradient of {m} examples, added"),
            );
            weight_grads_transposed(&g, (&xs, &gis), &mut s, &mut dw1, false);
            close(&dw1, &dw, &format!("{g:?} weight gradient of {m} examples"));
        }
    }
}
