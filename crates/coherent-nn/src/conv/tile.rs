//! The register tile of the convolution's implicit products, on AVX-512:
//! `C (rows x cols) [+]= sum_q A(q, i) B(q, j)`, with `A` read one value at a time (broadcast
//! to every lane) and `B` one run of up to 32 contiguous values per step `q`. Every operand
//! is addressed through a table of row offsets, so each product of the layer reads its
//! operands where they lie: the weights as stored, the zero-padded example itself (row `q` of
//! its unfolding starts at a fixed offset for each patch value, for stride 1), or a small slice
//! in cache; and `C` may be the padded input gradient, added into in place. Nothing large is
//! packed or unfolded.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Values of `B` (and columns of `C`) per tile at most: two AVX-512 vectors.
pub(super) const COLS: usize = 32;

/// Values per AVX-512 vector.
pub(super) const LANES: usize = 16;

/// Rows of `C` per tile.
const ROWS: usize = 8;

/// An operand read by broadcasts: value `(q, i)` at `rows[i] + q * step`.
#[derive(Clone, Copy)]
pub(super) struct Broadcast<'a> {
    pub data: &'a [f32],
    /// Where each row `i` starts.
    pub rows: &'a [usize],
    /// Distance between steps `q`.
    pub step: usize,
}

/// An operand read (or written) in runs: value `(r, j)` at `rows[r] + j`.
pub(super) struct Rows<'a, T> {
    pub data: T,
    /// Where each row starts.
    pub rows: &'a [usize],
}

/// Values of each row of `B` the tile reads for `cols` columns: whole vectors.
pub(super) fn read_width(cols: usize) -> usize {
    cols.div_ceil(LANES) * LANES
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

/// `C[..rows, ..cols] [+]= sum_{q < depth} A(q, i) B[q, j]` (`cols <= COLS`; the tile reads
/// [`read_width`]`(cols)` values of every row of `B`, those past `cols` ignored). Rows of `C`
/// may overlap: they are added into one after another.
///
/// # Panics
/// If an operand is too short for the shape, or the tiles are not [`available`].
pub(super) fn product(
    shape: (usize, usize, usize),
    a: Broadcast<'_>,
    b: Rows<'_, &[f32]>,
    c: Rows<'_, &mut [f32]>,
    accumulate: bool,
) {
    product_in_pieces(shape, a, b, c, accumulate, CONTIGUOUS);
}

/// Where the second vector of a row starts, from the row's start, in `B` and in `C`, and how
/// many of a row's columns the first holds: a row of the tile may be two pieces apart, such
/// as two output rows of 16 positions in a padded example, or two output rows of 14 (each a
/// vector of `B`, of which `C` takes the first 14 values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seconds {
    /// In every row of `B`.
    pub b: usize,
    /// In every row of `C` (at least `first`).
    pub c: usize,
    /// Columns in the first piece (at most [`LANES`]).
    pub first: usize,
}

/// Rows that are one contiguous run each.
pub(super) const CONTIGUOUS: Seconds = Seconds {
    b: LANES,
    c: LANES,
    first: LANES,
};

/// [`product`] with every row of `B` and `C` in two pieces, the second at `seconds` from the
/// row's start.
///
/// # Panics
/// If an operand is too short for the shape, `seconds.c < LANES`, or the tiles are not
/// [`available`].
pub(super) fn product_in_pieces(
    shape: (usize, usize, usize),
    a: Broadcast<'_>,
    b: Rows<'_, &[f32]>,
    c: Rows<'_, &mut [f32]>,
    accumulate: bool,
    seconds: Seconds,
) {
    let runs = Runs::whole(shape.1);
    run(shape, a, b, c, (accumulate, seconds, false), runs);
}

/// The steps of the depth a product runs over: `len` steps from every `every`-th one (`q`
/// with `q % every < len`), such as the wide positions of a padded example that are output
/// positions (a run of an output row's width every padded row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Runs {
    /// Steps in each run (at least 1).
    pub len: usize,
    /// Steps from one run's start to the next (at least `len`).
    pub every: usize,
}

impl Runs {
    /// Every step of a depth of `depth`: one run.
    pub(super) fn whole(depth: usize) -> Runs {
        Runs {
            len: depth.max(1),
            every: depth.max(1),
        }
    }
}

/// [`product`] over the steps `runs` of the depth alone (the others are taken as zero),
/// returning the squared norm of the product `A^T B` itself (without what it is added to)
/// where `norm` asks for it, else 0: taken from the sums in registers, it costs nothing more.
///
/// # Panics
/// As [`product`], or if `runs` is empty or its runs overlap.
pub(super) fn product_over_runs(
    shape: (usize, usize, usize),
    a: Broadcast<'_>,
    b: Rows<'_, &[f32]>,
    c: Rows<'_, &mut [f32]>,
    (accumulate, norm): (bool, bool),
    runs: Runs,
) -> f32 {
    run(shape, a, b, c, (accumulate, CONTIGUOUS, norm), runs)
}

/// What happens to a tile's sums: added to `C` or written, where the second piece of each row
/// lies, and whether their squared norm is taken.
type Store = (bool, Seconds, bool);

/// The products of [`product_in_pieces`], with the squared norm of the product where `store`
/// asks for it (else 0).
fn run(
    (rows, depth, cols): (usize, usize, usize),
    a: Broadcast<'_>,
    b: Rows<'_, &[f32]>,
    c: Rows<'_, &mut [f32]>,
    store: Store,
    runs: Runs,
) -> f32 {
    let seconds = store.1;
    assert!(
        (1..=runs.every).contains(&runs.len),
        "runs of {} steps every {}",
        runs.len,
        runs.every
    );
    assert!(
        (1..=LANES).contains(&seconds.first) && cols <= seconds.first + LANES,
        "tile columns"
    );
    assert!(
        seconds.c >= seconds.first,
        "the pieces of a row of C overlap"
    );
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    let end = |starts: &[usize], n: usize, width: usize| match n {
        0 => 0,
        _ => largest(&starts[..n]) + width,
    };
    // a row's reach: its second piece ends `second - first` past where one run would
    let reach = |width: usize, (first, second): (usize, usize)| match width > first {
        true => width - first + second,
        false => width,
    };
    assert!(
        c.data.len() >= end(c.rows, rows, reach(cols, (seconds.first, seconds.c))),
        "tile C too short"
    );
    if depth > 0 {
        let vectors = cols.div_ceil(seconds.first).min(2);
        let width = reach(vectors * LANES, (LANES, seconds.b));
        assert!(
            b.data.len() >= end(b.rows, depth, width),
            "tile B too short"
        );
        let span = (depth - 1) * a.step + 1;
        assert!(a.data.len() >= end(a.rows, rows, span), "tile A too short");
    }
    assert!(available(), "AVX-512 tiles on a machine without AVX-512");
    let mut norm = 0.0;
    #[cfg(target_arch = "x86_64")]
    for i0 in (0..rows).step_by(ROWS) {
        let shape = (ROWS.min(rows - i0), depth, cols);
        let a = Broadcast {
            rows: &a.rows[i0..],
            ..a
        };
        let c = Rows {
            data: &mut *c.data,
            rows: &c.rows[i0..],
        };
        // SAFETY: AVX-512F is available (asserted), and the assertions above bound every
        // index the tile reads or writes: A's rows up to step depth-1, B's rows up to
        // read_width(cols), C's rows up to cols (lanes past cols are masked).
        norm += unsafe {
            if cols <= seconds.first {
                tiles::<1>(shape, a, &b, c, store, runs)
            } else {
                tiles::<2>(shape, a, &b, c, store, runs)
            }
        };
    }
    norm
}

/// The largest of `starts` (0 for none): the bound the products check before they run, over
/// tables as long as the depth (hundreds of rows), so it is taken eight at a time.
fn largest(starts: &[usize]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX-512F is available.
        return unsafe { largest_in_vectors(starts) };
    }
    starts.iter().copied().max().unwrap_or(0)
}

/// [`largest`] by vectors of eight.
///
/// # Safety
/// AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn largest_in_vectors(starts: &[usize]) -> usize {
    let mut top = _mm512_setzero_si512();
    let mut chunks = starts.chunks_exact(8);
    for chunk in &mut chunks {
        // SAFETY: eight values.
        let v = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
        top = _mm512_max_epu64(top, v);
    }
    let tail = chunks.remainder().iter().copied().max().unwrap_or(0);
    (_mm512_reduce_max_epu64(top) as usize).max(tail)
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
    b: &Rows<'_, &[f32]>,
    c: Rows<'_, &mut [f32]>,
    store: Store,
    runs: Runs,
) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        match shape.0 {
            8 => tile::<8, V>(shape, a, b, c, store, runs),
            7 => tile::<7, V>(shape, a, b, c, store, runs),
            6 => tile::<6, V>(shape, a, b, c, store, runs),
            5 => tile::<5, V>(shape, a, b, c, store, runs),
            4 => tile::<4, V>(shape, a, b, c, store, runs),
            3 => tile::<3, V>(shape, a, b, c, store, runs),
            2 => tile::<2, V>(shape, a, b, c, store, runs),
            _ => tile::<1, V>(shape, a, b, c, store, runs),
        }
    }
}

/// One tile of `R` rows and `V` vectors of columns: `R V` accumulators in registers over the
/// whole depth.
///
/// # Safety
/// AVX-512F must be available, and the operands long enough for `(R, depth, cols)` (see
/// [`product_in_pieces`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const V: usize>(
    (_, depth, cols): (usize, usize, usize),
    a: Broadcast<'_>,
    b: &Rows<'_, &[f32]>,
    c: Rows<'_, &mut [f32]>,
    (accumulate, seconds, norm): Store,
    runs: Runs,
) -> f32 {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let (ap, bp) = (a.data.as_ptr(), b.data.as_ptr());
    // SAFETY: in bounds by the caller's contract.
    let starts: [*const f32; R] = std::array::from_fn(|i| unsafe { ap.add(a.rows[i]) });
    // One flat loop over the steps, jumping the gaps between runs: nested loops make the
    // compiler copy every accumulator from register to register at each step.
    let (mut q, mut left) = (0, runs.len);
    while q < depth {
        // SAFETY: q < depth, and the caller's contract gives `B` a row start for every step.
        let row = unsafe { *b.rows.get_unchecked(q) };
        let mut bq = [_mm512_setzero_ps(); V];
        for (v, bq) in bq.iter_mut().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            *bq = unsafe { _mm512_loadu_ps(bp.add(row + v * seconds.b)) };
        }
        for (acc, start) in acc.iter_mut().zip(&starts) {
            // SAFETY: in bounds by the caller's contract.
            let x = _mm512_set1_ps(unsafe { *start.add(q * a.step) });
            for (acc, bq) in acc.iter_mut().zip(&bq) {
                *acc = _mm512_fmadd_ps(x, *bq, *acc);
            }
        }
        q += 1;
        left -= 1;
        if left == 0 {
            q += runs.every - runs.len;
            left = runs.len;
        }
    }
    let mut masks = [0 as __mmask16; V];
    for (v, m) in masks.iter_mut().enumerate() {
        let n = match v {
            0 => cols.min(seconds.first),
            _ => cols.saturating_sub(seconds.first).min(LANES),
        };
        *m = ((1u32 << n) - 1) as __mmask16;
    }
    let cp = c.data.as_mut_ptr();
    let mut squares = _mm512_setzero_ps();
    for (acc, &row) in acc.iter().zip(c.rows) {
        for (v, (&sum, &m)) in acc.iter().zip(&masks).enumerate() {
            if norm {
                let sum = _mm512_maskz_mov_ps(m, sum);
                squares = _mm512_fmadd_ps(sum, sum, squares);
            }
            // SAFETY: in bounds by the caller's contract; lanes past `cols` are masked. Rows
            // that overlap are read after the previous row's store (one pointer, in order).
            unsafe {
                let at = cp.add(row + v * seconds.c);
                let sum = if accumulate {
                    _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, at))
                } else {
                    sum
                };
                _mm512_mask_storeu_ps(at, m, sum);
            }
        }
    }
    _mm512_reduce_add_ps(squares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::Rng;

    #[test]
    fn products_over_runs_skip_the_steps_between_runs() {
        if !available() {
            return;
        }
        let mut rng = Rng::new(9);
        for (rows, depth, cols) in [(13, 27, 17), (8, 40, 32), (3, 7, 5)] {
            for (len, every) in [(3, 5), (5, 5), (1, 4), (6, 10)] {
                let a: Vec<f32> = (0..rows * depth).map(|_| rng.normal() as f32).collect();
                let b: Vec<f32> = (0..depth * 32 + 32).map(|_| rng.normal() as f32).collect();
                let a_rows: Vec<usize> = (0..rows).map(|i| i * depth).collect();
                let b_rows: Vec<usize> = (0..depth).map(|q| q * 32).collect();
                let c_rows: Vec<usize> = (0..rows).map(|i| i * 32).collect();
                let init: Vec<f32> = (0..rows * 32).map(|_| rng.normal() as f32).collect();
                let (mut want, mut want_norm) = (init.clone(), 0.0);
                for i in 0..rows {
                    for j in 0..cols {
                        let sum: f32 = (0..depth)
                            .filter(|q| q % every < len)
                            .map(|q| a[i * depth + q] * b[q * 32 + j])
                            .sum();
                        want[i * 32 + j] += sum;
                        want_norm += sum * sum;
                    }
                }
                let mut c = init.clone();
                let norm = product_over_runs(
                    (rows, depth, cols),
                    Broadcast {
                        data: &a,
                        rows: &a_rows,
                        step: 1,
                    },
                    Rows {
                        data: &b[..],
                        rows: &b_rows,
                    },
                    Rows {
                        data: &mut c[..],
                        rows: &c_rows,
                    },
                    (true, true),
                    Runs { len, every },
                );
                let what = format!("{rows}x{depth}x{cols}, runs of {len} every {every}");
                assert!(
                    (norm - want_norm).abs() < 1e-4 * (1.0 + want_norm),
                    "{what}"
                );
                for (got, want) in c.iter().zip(&want) {
                    assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "{what}");
                }
            }
        }
    }

    #[test]
    fn the_largest_start_is_found_in_vectors_and_tails() {
        for n in [0usize, 1, 7, 8, 9, 16, 23, 577] {
            for at in [0, n / 2, n.saturating_sub(1)] {
                let mut starts: Vec<usize> = (0..n).map(|i| (i * 37) % 101).collect();
                if n > 0 {
                    starts[at] = usize::MAX / 3;
                }
                let want = starts.iter().copied().max().unwrap_or(0);
                assert_eq!(largest(&starts), want, "{n} values, largest at {at}");
            }
        }
    }

    #[test]
    fn tiles_equal_a_loop_over_every_index_with_rows_in_one_or_two_pieces() {
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
            // rows in scrambled order, some overlapping (C's rows 3 apart, 17 long)
            let a_rows: Vec<usize> = (0..rows).map(|i| (i * 7) % rows * 2).collect();
            let b_rows: Vec<usize> = (0..depth).map(|q| (depth - 1 - q) * 40).collect();
            let c_rows: Vec<usize> = (0..rows).map(|i| i * 3).collect();
            let step = 2 * rows + 1;
            let a: Vec<f32> = (0..depth * step + 2 * rows)
                .map(|_| rng.normal() as f32)
                .collect();
            let b: Vec<f32> = (0..depth.max(1) * 40)
                .map(|_| rng.normal() as f32)
                .collect();
            // two whole vectors apart; two rows of 14 (or 9) values, each read as a vector
            let pieces = [
                CONTIGUOUS,
                Seconds {
                    b: 21,
                    c: 19,
                    first: LANES,
                },
                Seconds {
                    b: 18,
                    c: 14,
                    first: 14,
                },
                Seconds {
                    b: 17,
                    c: 9,
                    first: 9,
                },
            ];
            let combinations = [false, true]
                .into_iter()
                .flat_map(|a| pieces.map(|p| (a, p)))
                .filter(|(_, p)| cols <= p.first + LANES);
            for (accumulate, seconds) in combinations {
                // column j of a row: in its first piece, or in its second
                let first = seconds.first;
                let col = |j: usize, second: usize| if j < first { j } else { second + j - first };
                let init: Vec<f32> = (0..rows * 3 + COLS + 8)
                    .map(|_| rng.normal() as f32)
                    .collect();
                let (mut want, mut want_norm) = (init.clone(), 0.0);
                for i in 0..rows {
                    for j in 0..cols {
                        let at = c_rows[i] + col(j, seconds.c);
                        let sum: f32 = (0..depth)
                            .map(|q| a[a_rows[i] + q * step] * b[b_rows[q] + col(j, seconds.b)])
                            .sum();
                        want[at] = sum + if accumulate { want[at] } else { 0.0 };
                        want_norm += sum * sum;
                    }
                }
                let mut c = init.clone();
                let shape = (rows, depth, cols);
                let a = Broadcast {
                    data: &a,
                    rows: &a_rows,
                    step,
                };
                let b = Rows {
                    data: &b[..],
                    rows: &b_rows,
                };
                let c_out = Rows {
                    data: &mut c[..],
                    rows: &c_rows,
                };
                if seconds == CONTIGUOUS {
                    let both = (accumulate, true);
                    let norm = product_over_runs(shape, a, b, c_out, both, Runs::whole(depth));
                    let tolerance = 1e-4 * (1.0 + want_norm);
                    assert!(
                        (norm - want_norm).abs() < tolerance,
                        "{norm} vs {want_norm}"
                    );
                } else {
                    product_in_pieces(shape, a, b, c_out, accumulate, seconds);
                }
                for (at, (got, want)) in c.iter().zip(&want).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{rows} {depth} {cols} {seconds:?} at {at}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
