//! The pair loop: sign and cosine of every pair `i < j` of a Gram matrix, split by labels.

/// Sums of `sign(g_i . g_j)` and `cos(g_i, g_j)` over a set of pairs, and their number.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairSums {
    /// Sum of `sign(g_i . g_j)` (0 for an inner product of exactly 0).
    pub sign: f64,
    /// Sum of `cos(g_i, g_j)`.
    pub cos: f64,
    /// Number of pairs.
    pub count: u64,
}

impl PairSums {
    fn add(&mut self, sign: f64, cos: f64) {
        self.sign += sign;
        self.cos += cos;
        self.count += 1;
    }

    /// `(mean sign, mean cosine)`; `None` without pairs.
    pub fn means(&self) -> Option<(f64, f64)> {
        (self.count > 0).then(|| (self.sign / self.count as f64, self.cos / self.count as f64))
    }
}

/// Pair sums of one Gram matrix: all pairs, pairs of the same label, pairs of different labels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stiffness {
    /// Every pair.
    pub all: PairSums,
    /// Pairs whose examples share a label.
    pub within: PairSums,
    /// Pairs whose examples have different labels.
    pub between: PairSums,
}

/// Cosine sums per unordered class pair `(a, b)`, `a <= b`, in a growable `k x k` table.
#[derive(Clone, Debug, Default)]
pub struct ClassCosines {
    k: usize,
    /// `(sum of cosines, pairs)` at `a * k + b`.
    cells: Vec<(f64, u64)>,
}

impl ClassCosines {
    /// Forgets every pair (keeps the allocation).
    pub fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = (0.0, 0));
    }

    fn add(&mut self, a: u32, b: u32, cos: f64) {
        let (a, b) = (a.min(b) as usize, a.max(b) as usize);
        if b >= self.k {
            let k = b + 1;
            let mut cells = vec![(0.0, 0); k * k];
            for x in 0..self.k {
                for y in 0..self.k {
                    cells[x * k + y] = self.cells[x * self.k + y];
                }
            }
            (self.k, self.cells) = (k, cells);
        }
        let cell = &mut self.cells[a * self.k + b];
        cell.0 += cos;
        cell.1 += 1;
    }

    /// `(a, b, mean cosine)` of every class pair with at least one pair of examples, `a <= b`.
    pub fn means(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (0..self.k * self.k).filter_map(move |c| {
            let (sum, n) = self.cells[c];
            (n > 0).then(|| (c / self.k, c % self.k, sum / n as f64))
        })
    }
}

/// Adds every pair `i < j` of the row-major `n x n` Gram matrix `gram` to `out` (and to
/// `classes`, when given). Pairs with a zero gradient (`gram[i][i] <= 0`) are skipped: their
/// cosine is undefined. `labels`, when given, has `n` entries.
pub fn add_pairs<T: Copy + Into<f64>>(
    gram: &[T],
    n: usize,
    labels: Option<&[u32]>,
    mut classes: Option<&mut ClassCosines>,
    out: &mut Stiffness,
) {
    let at = |i: usize, j: usize| -> f64 { gram[i * n + j].into() };
    for i in 0..n {
        let ni = at(i, i);
        if ni <= 0.0 {
            continue;
        }
        for j in i + 1..n {
            let nj = at(j, j);
            if nj <= 0.0 {
                continue;
            }
            let dot = at(i, j);
            let sign = if dot > 0.0 {
                1.0
            } else if dot < 0.0 {
                -1.0
            } else {
                0.0
            };
            let cos = (dot / (ni * nj).sqrt()).clamp(-1.0, 1.0);
            out.all.add(sign, cos);
            if let Some(labels) = labels {
                let (a, b) = (labels[i], labels[j]);
                if a == b {
                    out.within.add(sign, cos);
                } else {
                    out.between.add(sign, cos);
                }
                if let Some(classes) = classes.as_deref_mut() {
                    classes.add(a, b, cos);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_grows_without_losing_cells() {
        let mut t = ClassCosines::default();
        t.add(1, 0, 0.5);
        t.add(0, 1, 0.25);
        t.add(4, 2, -1.0);
        t.add(1, 1, 1.0);
        let got: Vec<_> = t.means().collect();
        assert_eq!(got, vec![(0, 1, 0.375), (1, 1, 1.0), (2, 4, -1.0)]);
        t.clear();
        assert_eq!(t.means().count(), 0);
    }

    #[test]
    fn zero_inner_products_have_sign_zero() {
        let gram = [1.0f32, 0.0, 0.0, 4.0];
        let mut s = Stiffness::default();
        add_pairs(&gram, 2, Some(&[3, 3]), None, &mut s);
        assert_eq!(s.all.means(), Some((0.0, 0.0)));
        assert_eq!(s.within.count, 1);
        assert_eq!(s.between.means(), None);
    }
}
