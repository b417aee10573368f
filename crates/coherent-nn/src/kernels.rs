//! The dense numeric kernels every layer calls: one matrix product, written once.

/// How a row-major operand is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// As stored.
    Normal,
    /// Transposed.
    Transposed,
}

/// A row-major operand of a product and how it is read.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    /// The values, row-major as stored.
    pub data: &'a [f32],
    /// Read as stored, or transposed.
    pub layout: Layout,
}

/// `c (m x n) = [c +] op(a) (m x k) * op(b) (k x n)`, all row-major, with `(m, k, n)` the
/// product's `shape`.
///
/// `a` is stored `m x k` (or `k x m` when transposed), `b` is stored `k x n` (or `n x k`).
/// Large products run on rayon's threads.
pub fn matmul(
    shape: (usize, usize, usize),
    a: Mat<'_>,
    b: Mat<'_>,
    c: &mut [f32],
    accumulate: bool,
) {
    matmul_on(shape, a, b, c, accumulate, true);
}

/// [`matmul`] on the calling thread only when `parallel` is false (for products that are
/// already one of many running in parallel).
///
/// `c = [c +] op(a) op(b)`, all row-major: on this thread by `matrixmultiply`, or, for a large
/// product asked to run in parallel, by `gemm` on rayon's threads.
pub fn matmul_on(
    (m, k, n): (usize, usize, usize),
    Mat {
        data: a,
        layout: a_layout,
    }: Mat<'_>,
    Mat {
        data: b,
        layout: b_layout,
    }: Mat<'_>,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "matmul sizes"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let (a_rs, a_cs) = match a_layout {
        Layout::Normal => (k as isize, 1),
        Layout::Transposed => (1, m as isize),
    };
    let (b_rs, b_cs) = match b_layout {
        Layout::Normal => (n as isize, 1),
        Layout::Transposed => (1, k as isize),
    };
    let (c_rs, c_cs) = (n as isize, 1);
    // The kernel is chosen by the shape alone, never by the number of threads, so that a run
    // computes the same numbers on any number of threads (`gemm` splits its work without
    // changing any sum's order).
    if !parallel || m * n * k < 1 << 18 {
        // SAFETY: as below.
        unsafe {
            serial_product(
                (m, k, n),
                (a, a_rs, a_cs),
                (b, b_rs, b_cs),
                (c, c_rs, c_cs),
                accumulate,
            )
        };
        return;
    }
    // SAFETY: the assertion above guarantees every index the strides reach is in bounds:
    // a reaches (m-1, k-1), b reaches (k-1, n-1) and c reaches (m-1, n-1) of matrices of
    // exactly those sizes, and c does not alias a or b (it is a unique borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}

/// A strided operand: values, row stride, column stride.
type Strided<'a> = (&'a [f32], isize, isize);

/// A product on the calling thread, by `matrixmultiply`, which packs both operands whatever
/// their strides: the per-example products of a layer (many small and medium products, one
/// per example, in parallel) run 1.5-3x faster than through `gemm`, whose kernels read some
/// operand layouts unpacked.
///
/// # Safety
/// Every index the strides reach for the shape `(m, k, n)` must be inside its slice.
unsafe fn serial_product(
    (m, k, n): (usize, usize, usize),
    (a, a_rs, a_cs): Strided<'_>,
    (b, b_rs, b_cs): Strided<'_>,
    (c, c_rs, c_cs): (&mut [f32], isize, isize),
    accumulate: bool,
) {
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the caller's contract.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs,
            a_cs,
            b.as_ptr(),
            b_rs,
            b_cs,
            beta,
            c.as_mut_ptr(),
            c_rs,
            c_cs,
        )
    };
}

/// Squared Euclidean norm of every row of a row-major `rows x cols` matrix.
pub fn row_sq_norms(x: &[f32], cols: usize, out: &mut [f32]) {
    for (row, o) in x.chunks_exact(cols).zip(out.iter_mut()) {
        *o = sq_norm(row);
    }
}

/// `|x|^2`, summed in eight independent lanes so that the compiler vectorises it.
pub fn sq_norm(x: &[f32]) -> f32 {
    lanes_sum(x, |v| v * v)
}

/// `sum_j x_j`, in eight independent lanes so that the compiler vectorises it.
pub fn sum(x: &[f32]) -> f32 {
    lanes_sum(x, |v| v)
}

/// `sum_j f(x_j)` in eight independent lanes (in a fixed order whatever the machine).
#[inline(always)]
fn lanes_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut parts = x.chunks_exact(8);
    for part in &mut parts {
        for (l, v) in lanes.iter_mut().zip(part) {
            *l += f(*v);
        }
    }
    let tail: f32 = parts.remainder().iter().map(|v| f(*v)).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    /// `len` values cycling through `modulo` levels centred on 0:
    /// `(i * step % modulo - modulo / 2) / scale`.
    fn levels(len: usize, step: usize, modulo: usize, scale: f32) -> Vec<f32> {
        let centre = (modulo / 2) as f32;
        (0..len)
            .map(|i| ((i * step % modulo) as f32 - centre) / scale)
            .collect()
    }

    #[test]
    fn matmul_matches_naive_in_every_layout() {
        let (m, k, n) = (7, 13, 5);
        let (a, b) = (levels(m * k, 37, 11, 3.0), levels(k * n, 17, 7, 2.0));
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let want = naive(m, k, n, &a, ta, &b, tb);
            let layout = |t: bool| {
                if t {
                    Layout::Transposed
                } else {
                    Layout::Normal
                }
            };
            let (la, lb) = (layout(ta), layout(tb));
            let mut c = vec![1.0; m * n];
            // written over, then added to: the product, then twice the product
            for (accumulate, times) in [(false, 1.0), (true, 2.0)] {
                matmul(
                    (m, k, n),
                    Mat {
                        data: &a,
                        layout: la,
                    },
                    Mat {
                        data: &b,
                        layout: lb,
                    },
                    &mut c,
                    accumulate,
                );
                for (x, y) in c.iter().zip(&want) {
                    let what = format!("{ta} {tb} accumulate {accumulate}");
                    assert!((x - times * y).abs() < 1e-4, "{what}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn row_norms_match_a_plain_sum() {
        let x: Vec<f32> = (0..3 * 29).map(|i| (i as f32 - 40.0) / 7.0).collect();
        let mut out = vec![0.0; 3];
        row_sq_norms(&x, 29, &mut out);
        for (r, o) in out.iter().enumerate() {
            let want: f32 = x[r * 29..(r + 1) * 29].iter().map(|v| v * v).sum();
            assert!((o - want).abs() < 1e-4 * want);
        }
    }

    #[test]
    fn large_parallel_product_matches_naive() {
        let (m, k, n) = (70, 90, 80);
        let (a, b) = (levels(m * k, 31, 13, 7.0), levels(k * n, 7, 5, 3.0));
        let want = naive(m, k, n, &a, false, &b, true);
        let mut c = vec![0.0; m * n];
        matmul(
            (m, k, n),
            Mat {
                data: &a,
                layout: Layout::Normal,
            },
            Mat {
                data: &b,
                layout: Layout::Transposed,
            },
            &mut c,
            false,
        );
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-3 * (1.0 + y.abs()));
        }
    }
}
