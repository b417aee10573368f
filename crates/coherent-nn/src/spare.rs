//! The spare gradient buffer: the largest activation gradient that a backward pass has
//! finished with lately, kept for the next activation gradient it can hold (in a pass the
//! gradient a layer lets go of is mostly the size of the one the layer before it needs next),
//! so that a pass neither allocates nor zero-fills most of its gradients. The spare holds
//! whatever it last held: the first consumer of a gradient made from it writes every value
//! ([`crate::ActGrad::write_or_add`]), or it is zero-filled first. One buffer, not more: each
//! spare kept is memory held at the end of a backward pass, where a step's memory peaks.

use crate::switch::Switch;
use std::sync::Mutex;

/// The spare of every network of the process.
static SPARE: Spare = Spare(Mutex::new(Vec::new()));

/// On while a caller runs with first writes checked
/// ([`crate::check::with_first_writes_checked`]).
pub(crate) static CHECKING: Switch = Switch::new();

/// Keeps `buffer` as the spare if it holds more values than the spare, else lets it go.
pub(crate) fn recycle(buffer: Vec<f32>) {
    SPARE.recycle(buffer);
}

/// A buffer of `len` values with arbitrary contents: the spare, if it holds `len` values.
pub(crate) fn take(len: usize) -> Option<Vec<f32>> {
    SPARE.take(len)
}

/// Whether a gradient's first consumer receives NaN in every value (so that a value it does not
/// write shows), rather than whatever the buffer held.
pub(crate) fn first_writes_checked() -> bool {
    CHECKING.is_on()
}

/// One spare buffer (empty: none).
struct Spare(Mutex<Vec<f32>>);

impl Spare {
    fn recycle(&self, buffer: Vec<f32>) {
        let mut spare = self.0.lock().expect("spare buffer lock");
        if buffer.len() > spare.len() {
            *spare = buffer;
        }
    }

    fn take(&self, len: usize) -> Option<Vec<f32>> {
        let mut spare = self.0.lock().expect("spare buffer lock");
        if spare.is_empty() || spare.len() < len {
            return None;
        }
        let mut buffer = std::mem::take(&mut *spare);
        buffer.truncate(len);
        Some(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_buffer_is_kept_and_comes_back_once_with_its_contents() {
        let spare = Spare(Mutex::new(Vec::new()));
        assert_eq!(spare.take(0), None, "no spare yet");
        spare.recycle(vec![4.0; 40]);
        spare.recycle(vec![3.0; 30]);
        assert_eq!(spare.take(41), None, "it holds 40 values");
        assert_eq!(
            spare.take(35),
            Some(vec![4.0; 35]),
            "the 40 values, truncated"
        );
        assert_eq!(spare.take(1), None, "it comes back once");
        spare.recycle(vec![5.0; 50]);
        spare.recycle(vec![6.0; 60]);
        assert_eq!(
            spare.take(60),
            Some(vec![6.0; 60]),
            "the larger one replaced it"
        );
    }
}
