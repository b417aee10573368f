//! Buffers whose rows of sixteen lanes each lie on a cache line of their own, whatever address
//! the allocator returns: a vector load or store of a row is then never split across two lines,
//! which costs a second access. (With 16-byte aligned buffers three rows in four were split,
//! and how many depended on what had been allocated before.)

use crate::{Lanes, LANES};

/// One row of lanes on a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line(Lanes);

const _: () = assert!(std::mem::size_of::<Line>() == std::mem::size_of::<Lanes>());

/// A buffer of rows of lanes, each on a cache line.
#[derive(Default)]
pub(crate) struct LineBuffer(Vec<Line>);

impl LineBuffer {
    /// The first `rows` rows (grown with zeros as needed; rows kept hold what they held).
    pub(crate) fn lanes(&mut self, rows: usize) -> &mut [Lanes] {
        self.grow(rows);
        // SAFETY: `Line` is `repr(C)` around one `Lanes` and of its size, so the first `rows`
        // lines of the vector are `rows` contiguous, initialised `Lanes`, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<Lanes>(), rows) }
    }

    /// The first `len` values, from the start of the first line (grown with zeros as needed).
    pub(crate) fn values(&mut self, len: usize) -> &mut [f32] {
        self.grow(len.div_ceil(LANES));
        // SAFETY: as in `lanes`: the lines hold at least `len` contiguous, initialised `f32`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<f32>(), len) }
    }

    /// The first `len` values as [`LineBuffer::values`] last made them.
    ///
    /// # Panics
    /// If the buffer holds fewer than `len` values.
    pub(crate) fn filled(&self, len: usize) -> &[f32] {
        assert!(
            len <= self.0.len() * LANES,
            "{len} values of a buffer of {} lines",
            self.0.len()
        );
        // SAFETY: as in `values`, borrowed immutably.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<f32>(), len) }
    }

    fn grow(&mut self, rows: usize) {
        if self.0.len() < rows {
            self.0.resize(rows, Line([0.0; LANES]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_values_start_on_a_cache_line_and_keep_their_contents() {
        let mut buffer = LineBuffer::default();
        let values = buffer.values(37);
        assert_eq!(values.as_ptr() as usize % 64, 0);
        assert!(values.iter().all(|v| *v == 0.0));
        values[36] = 5.0;
        assert_eq!(buffer.filled(37)[36], 5.0);
        let rows = buffer.lanes(9);
        assert_eq!(rows.as_ptr() as usize % 64, 0);
        assert_eq!(rows[2][4], 5.0, "value 36 is lane 4 of row 2");
        assert!(rows[8].iter().all(|v| *v == 0.0));
    }
}
