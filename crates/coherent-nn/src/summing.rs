//! Buffers that a layer needs only while its backward pass sums its gradient: the partial
//! sums of its groups of examples, and their total before it is laid out in the layer's order.
//! The layers of a pass sum one after another, so a few buffers shared by every layer of the
//! process serve them all, sized for the largest layer; buffers kept by each layer from step
//! to step would hold several copies of the whole network's parameters (a convolution keeps
//! eight partial sums). A buffer taken holds whatever it last held.

use crate::spare;
use std::sync::Mutex;

/// The buffers kept, for the next layer to take.
static KEPT: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Buffers kept at most: a layer takes two at once (its partial sums and their total). More
/// layers summing at once (networks trained side by side in one process) take new buffers.
const MOST: usize = 2;

/// A buffer of `len` values, with arbitrary contents: the largest one kept (grown if it is
/// too short), else a new one. Checked passes ([`crate::check::with_first_writes_checked`])
/// get NaN in every value, so that a value the layer does not write before reading shows in
/// its gradient.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let mut buffer = {
        let mut kept = KEPT.lock().expect("summing buffers lock");
        let largest = (0..kept.len()).max_by_key(|&i| kept[i].capacity());
        largest.map(|i| kept.swap_remove(i)).unwrap_or_default()
    };
    if buffer.capacity() < len {
        // a new buffer rather than a grown one: what the old one held need not be copied
        buffer = Vec::with_capacity(len);
    }
    buffer.resize(len, 0.0);
    if spare::first_writes_checked() {
        buffer.fill(f32::NAN);
    }
    buffer
}

/// Gives `buffer` back for the next layer to take, letting the smallest kept go if [`MOST`]
/// are kept already.
pub(crate) fn give(buffer: Vec<f32>) {
    let mut kept = KEPT.lock().expect("summing buffers lock");
    kept.push(buffer);
    if kept.len() > MOST {
        let smallest = (0..kept.len()).min_by_key(|&i| kept[i].capacity());
        smallest.map(|i| kept.swap_remove(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_with_its_contents_and_the_largest_kept() {
        // other tests of the process may take and give at the same time: only what this
        // test can see for itself is asserted
        let mut a = take(1000);
        assert_eq!(a.len(), 1000);
        a.fill(7.0);
        give(a);
        let b = take(10);
        assert_eq!(b.len(), 10);
        let c = take(3000);
        assert_eq!(c.len(), 3000);
        give(b);
        give(c);
        give(vec![1.0; 5]);
        let kept = KEPT.lock().expect("summing buffers lock");
        assert!(kept.len() <= MOST, "{} kept", kept.len());
        assert!(kept.iter().all(|k| k.capacity() > 5), "the smallest let go");
    }
}
