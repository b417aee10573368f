//! Wide positions of a stride-1 convolution: its output positions laid out on rows as wide
//! as the zero-padded input, so that patch value `(c, ki, kj)` of wide position `w` is the
//! padded example's value `offset(c, ki, kj) + w`. A run of wide positions reads a run of
//! the padded example for every patch value, across output rows, with nothing to unfold; the
//! last `k - 1` wide positions of each row are no output position, and the products give
//! them output gradients of zero (and drop their outputs).

use super::geometry::ConvGeometry;
use super::tile::{Runs, Seconds, LANES};
use super::transpose::transpose;
use std::ops::Range;

/// Wide positions of a row: the width of the padded input.
pub(super) fn row(g: &ConvGeometry) -> usize {
    g.width + 2 * g.padding
}

/// Wide positions up to the last output position (stride 1).
pub(super) fn len(g: &ConvGeometry) -> usize {
    (g.out_height() - 1) * row(g) + g.out_width()
}

/// The runs of output positions among the wide positions `span`: `(wide, position, length)`.
pub(super) fn runs(g: &ConvGeometry, span: Range<usize>) -> impl Iterator<Item = Run> {
    let (wp, ow) = (row(g), g.out_width());
    let mut w = span.start;
    std::iter::from_fn(move || {
        while w < span.end {
            let (r, c) = (w / wp, w % wp);
            if c >= ow {
                w = (r + 1) * wp;
                continue;
            }
            let run = Run {
                wide: w,
                position: r * ow + c,
                len: (ow - c).min(span.end - w),
            };
            w += run.len;
            return Some(run);
        }
        None
    })
}

/// Whether every output row of `g` is whole vectors of [`LANES`] positions: the products
/// can then take the output positions two vectors at a time ([`vector_pairs`]) and skip the
/// wide positions that are none.
pub(super) fn whole_vectors(g: &ConvGeometry) -> bool {
    g.out_width().is_multiple_of(LANES)
}

/// Whether the output rows of `g` are narrower than a vector while its wide rows are wider:
/// a vector per output row, of which the output takes its row's values, then spends fewer
/// products on positions that are none than the wide positions do (a 14-wide output of a 5x5
/// kernel: 2 of 16 columns, against 4 of 18). The products take two output rows at a time
/// ([`vector_pairs`]).
pub(super) fn narrow_rows(g: &ConvGeometry) -> bool {
    g.out_width() < LANES && row(g) > LANES
}

/// Whether the products take the output positions of `g` in [`vector_pairs`]: where its rows
/// are [`whole_vectors`] or [`narrow_rows`].
pub(super) fn in_vector_pairs(g: &ConvGeometry) -> bool {
    whole_vectors(g) || narrow_rows(g)
}

/// The output positions of `g` ([`in_vector_pairs`]) two vectors at a time, the last one alone
/// where their number is odd: vectors of [`LANES`] positions where the rows are whole vectors,
/// else a vector per output row.
pub(super) fn vector_pairs(g: &ConvGeometry) -> impl Iterator<Item = VectorPair> {
    let (wp, ow) = (row(g), g.out_width());
    let width = if whole_vectors(g) { LANES } else { ow };
    let vectors = g.positions() / width;
    let wide = move |v: usize| (v * width / ow) * wp + v * width % ow;
    (0..vectors).step_by(2).map(move |v| {
        let two = v + 1 < vectors;
        VectorPair {
            position: v * width,
            wide: wide(v),
            seconds: Seconds {
                b: if two { wide(v + 1) - wide(v) } else { LANES },
                c: width,
                first: width,
            },
            len: if two { 2 * width } else { width },
        }
    })
}

/// Two vectors of output positions ([`vector_pairs`]): consecutive output positions, which
/// lie in one or two runs of wide positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct VectorPair {
    /// The first output position.
    pub position: usize,
    /// Its wide position.
    pub wide: usize,
    /// Where the second vector starts, past the first: among the wide positions (`b`) and the
    /// output positions (`c`); and the positions of the first (`first`).
    pub seconds: Seconds,
    /// Output positions: two vectors' worth, or one for a last vector alone.
    pub len: usize,
}

/// Consecutive output positions at consecutive wide positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    /// The first wide position.
    pub wide: usize,
    /// The first output position.
    pub position: usize,
    /// How many.
    pub len: usize,
}

/// The output gradients `gi` (`C_out x T`) on wide positions: `out` (`C_out x len`, then at
/// least `slack` more values), zero on the positions that are none.
pub(super) fn spread(g: &ConvGeometry, gi: &[f32], out: &mut Vec<f32>, slack: usize) {
    let (t, lw) = (g.positions(), len(g));
    out.clear();
    out.resize(g.out_channels * lw + slack, 0.0);
    let (wp, ow) = (row(g), g.out_width());
    for (wide, grads) in out.chunks_mut(lw).zip(gi.chunks_exact(t)) {
        for (r, line) in grads.chunks_exact(ow).enumerate() {
            wide[r * wp..r * wp + ow].copy_from_slice(line);
        }
    }
}

/// The wide positions that are output positions: a run of an output row's width every padded
/// row.
pub(super) fn output_runs(g: &ConvGeometry) -> Runs {
    Runs {
        len: g.out_width(),
        every: row(g),
    }
}

/// The output gradients `gi` (`C_out x T`) on wide positions, transposed: `out` (`len x
/// C_out`, then at least `slack` more values). The rows of the wide positions that are none
/// are left as they are: products over [`output_runs`] skip them.
pub(super) fn spread_transposed(g: &ConvGeometry, gi: &[f32], out: &mut Vec<f32>, slack: usize) {
    let (t, co) = (g.positions(), g.out_channels);
    let (wp, ow) = (row(g), g.out_width());
    out.resize(len(g) * co + slack, 0.0);
    for r in 0..g.out_height() {
        transpose(&gi[r * ow..], t, (co, ow), &mut out[r * wp * co..]);
    }
}

/// The outputs of the wide positions `span`, `panel` (`C_out` rows of `ld` values, from the
/// span's start), into their output positions in `y` (`C_out x T`), or added to them.
pub(super) fn gather(
    g: &ConvGeometry,
    (panel, ld): (&[f32], usize),
    span: Range<usize>,
    y: &mut [f32],
    add: bool,
) {
    let t = g.positions();
    for run in runs(g, span.clone()) {
        let from = run.wide - span.start;
        for (y, p) in y.chunks_exact_mut(t).zip(panel.chunks(ld)) {
            let (y, p) = (&mut y[run.position..][..run.len], &p[from..from + run.len]);
            if add {
                y.iter_mut().zip(p).for_each(|(y, p)| *y += p);
            } else {
                y.copy_from_slice(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_every_output_position_once_at_its_wide_position() {
        for g in [
            ConvGeometry::new((2, 8, 8), 3, 3, 1, 1),
            ConvGeometry::new((1, 7, 12), 2, 5, 1, 2),
            ConvGeometry::new((1, 6, 9), 2, 3, 1, 0),
        ] {
            let (wp, ow, lw) = (row(&g), g.out_width(), len(&g));
            let mut seen = vec![0; g.positions()];
            for start in (0..lw).step_by(13) {
                for run in runs(&g, start..lw.min(start + 13)) {
                    for k in 0..run.len {
                        let (w, p) = (run.wide + k, run.position + k);
                        assert_eq!((w / wp, w % wp), (p / ow, p % ow), "{g:?}");
                        seen[p] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{g:?}: {seen:?}");
        }
    }

    #[test]
    fn vector_pairs_cover_every_output_position_once_at_its_wide_position() {
        for g in [
            ConvGeometry::new((1, 5, 16), 2, 3, 1, 1),
            ConvGeometry::new((1, 4, 32), 2, 3, 1, 1),
            ConvGeometry::new((1, 4, 50), 2, 3, 1, 0),
            ConvGeometry::new((1, 6, 20), 2, 5, 1, 0),
            ConvGeometry::new((1, 14, 14), 2, 5, 1, 2),
            ConvGeometry::new((1, 5, 15), 2, 3, 1, 1),
            ConvGeometry::new((2, 9, 13), 2, 5, 1, 2),
        ] {
            assert!(in_vector_pairs(&g), "{g:?}");
            let (wp, ow) = (row(&g), g.out_width());
            let mut seen = vec![0; g.positions()];
            for pair in vector_pairs(&g) {
                let s = pair.seconds;
                assert!(s.first <= LANES && s.c >= s.first, "{g:?}: {s:?}");
                assert!(pair.len == 2 * s.first || pair.position + s.first == g.positions());
                for k in 0..pair.len {
                    let (p, w) = match k < s.first {
                        true => (pair.position + k, pair.wide + k),
                        false => (
                            pair.position + s.c + k - s.first,
                            pair.wide + s.b + k - s.first,
                        ),
                    };
                    assert_eq!((w / wp, w % wp), (p / ow, p % ow), "{g:?}");
                    seen[p] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{g:?}: {seen:?}");
        }
        assert!(!in_vector_pairs(&ConvGeometry::new((1, 8, 8), 2, 3, 1, 1)));
        assert!(!in_vector_pairs(&ConvGeometry::new(
            (1, 14, 14),
            2,
            3,
            1,
            1
        )));
    }

    #[test]
    fn spreading_and_gathering_move_values_to_their_wide_positions_and_back() {
        let g = ConvGeometry::new((1, 5, 6), 3, 3, 1, 1);
        let (t, lw, wp, ow) = (g.positions(), len(&g), row(&g), g.out_width());
        let gi: Vec<f32> = (0..3 * t).map(|v| v as f32 + 1.0).collect();
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        spread(&g, &gi, &mut rows, 4);
        spread_transposed(&g, &gi, &mut cols, 0);
        assert_eq!(rows.len(), 3 * lw + 4);
        for o in 0..3 {
            for w in 0..lw {
                let want = if w % wp < ow {
                    gi[o * t + w / wp * ow + w % wp]
                } else {
                    0.0
                };
                assert_eq!(rows[o * lw + w], want);
                if w % wp < ow {
                    assert_eq!(cols[w * 3 + o], want);
                }
            }
        }
        // the runs of output positions are those wide positions, every one of them
        let runs = output_runs(&g);
        let covered: Vec<usize> = (0..lw).filter(|w| w % runs.every < runs.len).collect();
        let outputs: Vec<usize> = (0..lw).filter(|w| w % wp < ow).collect();
        assert_eq!((covered.len(), &covered), (t, &outputs));
        let mut y = vec![0.0; 3 * t];
        gather(&g, (&rows, lw), 0..lw, &mut y, false);
        assert_eq!(y, gi);
        gather(&g, (&rows, lw), 0..lw, &mut y, true);
        assert_eq!(y, gi.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }
}
