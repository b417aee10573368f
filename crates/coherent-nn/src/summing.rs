//! Buffers that a layer needs only while its backward pass sums its gradient: the partial
//! sums of its groups of examples, and their total before it is laid out in the layer's order.
//! The layers of a pass sum one after another, so a few buffers shared by every layer of the
//! process serve them all, sized for the largest layer; buffers kept by each layer from step
//! to step would hold several copies of the whole network's parameters (a convolution keeps
//! eight partial sums). A buffer taken holds whatever it last held.

use crate::spare;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// The buffers kept for the next layer to take, shared by every layer of the process.
static KEPT: Kept = Kept(Mutex::new(Vec::new()));

/// Buffers kept at most: a layer takes two at once (its partial sums and their total). More
/// layers summing at once (networks trained side by side in one process) take new buffers.
const MOST: usize = 2;

/// A buffer of `len` values, with arbitrary contents: the largest one kept (a new one if it
/// is too short). Checked passes ([`crate::check::with_first_writes_checked`]) get NaN in every
/// value, so that a value the layer does not write before reading shows in its gradient.
pub(crate) fn take(len: usize) -> Sums {
    let mut sums = KEPT.take(len);
    if spare::first_writes_checked() {
        sums.fill(f32::NAN);
    }
    sums
}

/// Gives `sums` back for the next layer to take, letting the smallest kept go if [`MOST`]
/// are kept already.
pub(crate) fn give(sums: Sums) {
    KEPT.give(sums.buffer);
}

/// The first `len` values of a kept buffer. The buffer keeps its whole length, so that a
/// larger layer taking it next finds its values there and does not fill them again.
pub(crate) struct Sums {
    buffer: Vec<f32>,
    len: usize,
}

impl Deref for Sums {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl DerefMut for Sums {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

/// Buffers kept, at most [`MOST`].
struct Kept(Mutex<Vec<Vec<f32>>>);

impl Kept {
    fn take(&self, len: usize) -> Sums {
        let buffer = {
            let mut kept = self.0.lock().expect("summing buffers lock");
            let largest = (0..kept.len()).max_by_key(|&i| kept[i].len());
            largest.map(|i| kept.swap_remove(i)).unwrap_or_default()
        };
        // a new buffer rather than a grown one: what the old one held need not be copied
        let buffer = match buffer.len() < len {
            true => vec![0.0; len],
            false => buffer,
        };
        Sums { buffer, len }
    }

    fn give(&self, buffer: Vec<f32>) {
        let mut kept = self.0.lock().expect("summing buffers lock");
        spare::keep_largest(&mut kept, buffer, MOST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_with_its_contents_and_the_largest_kept() {
        let kept = Kept(Mutex::new(Vec::new()));
        let mut a = kept.take(1000);
        assert_eq!(a.len(), 1000);
        a.fill(7.0);
        kept.give(a.buffer);
        let b = kept.take(10);
        assert_eq!(
            &b[..],
            &[7.0; 10][..],
            "the largest kept, with what it held"
        );
        let c = kept.take(3000);
        assert_eq!(c.len(), 3000);
        kept.give(b.buffer);
        kept.give(c.buffer);
        kept.give(vec![1.0; 5]);
        let capacities: Vec<usize> = kept.0.lock().unwrap().iter().map(Vec::capacity).collect();
        assert_eq!(capacities.len(), MOST);
        assert!(
            capacities.iter().all(|&c| c >= 1000),
            "{capacities:?}: the smallest let go"
        );
    }
}
