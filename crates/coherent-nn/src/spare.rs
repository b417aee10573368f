//! The spare gradient buffers: activation gradients that a backward pass has finished with
//! lately, kept for the next activation gradients they can hold (in a pass the gradient a layer
//! lets go of is mostly the size of one that a layer before it needs next), so that a pass
//! neither allocates nor zero-fills most of its gradients. A spare holds whatever it last held:
//! the first consumer of a gradient made from it writes every value
//! ([`crate::ActGrad::write_or_add`]), or it is zero-filled first.
//!
//! [`SPARES`] buffers, the newest, not more: each spare kept is memory held from one step to
//! the next. A spare is lent only to a gradient of at least half its size, so that a small
//! gradient (the loss's, at the start of a pass) does not take a large buffer that its pass
//! needs later. With four, every gradient of a CNN whose convolutions and pools halve and
//! double its sizes finds one; a ResNet misses only where a stage's size changes.

use crate::switch::Switch;
use std::sync::Mutex;

/// The spares of every network of the process.
static SPARE: Spare = Spare(Mutex::new(Vec::new()));

/// Buffers kept at most.
const SPARES: usize = 4;

/// On while a caller runs with first writes checked
/// ([`crate::check::with_first_writes_checked`]).
pub(crate) static CHECKING: Switch = Switch::new();

/// Keeps `buffer` as the newest spare, letting the oldest go if [`SPARES`] are kept already.
pub(crate) fn recycle(buffer: Vec<f32>) {
    SPARE.recycle(buffer);
}

/// A buffer of `len` values with arbitrary contents: the smallest spare that holds `len`
/// values and no more than twice as many.
pub(crate) fn take(len: usize) -> Option<Vec<f32>> {
    SPARE.take(len)
}

/// Whether a gradient's first consumer receives NaN in every value (so that a value it does not
/// write shows), rather than whatever the buffer held.
pub(crate) fn first_writes_checked() -> bool {
    CHECKING.is_on()
}

/// The spare buffers, oldest first, none empty.
struct Spare(Mutex<Vec<Vec<f32>>>);

impl Spare {
    fn recycle(&self, buffer: Vec<f32>) {
        if buffer.is_empty() {
            return;
        }
        let mut spares = self.0.lock().expect("spare buffer lock");
        if spares.len() == SPARES {
            spares.remove(0);
        }
        spares.push(buffer);
    }

    fn take(&self, len: usize) -> Option<Vec<f32>> {
        let mut spares = self.0.lock().expect("spare buffer lock");
        let fits = |k: &usize| (len..=2 * len).contains(&spares[*k].len());
        let best = (0..spares.len())
            .filter(fits)
            .min_by_key(|&k| spares[k].len())?;
        let mut buffer = spares.remove(best);
        buffer.truncate(len);
        Some(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_spare_that_fits_comes_back_once_with_its_contents() {
        let spare = Spare(Mutex::new(Vec::new()));
        assert_eq!(spare.take(0), None, "no spare yet");
        spare.recycle(vec![4.0; 40]);
        spare.recycle(vec![3.0; 30]);
        assert_eq!(spare.take(41), None, "none holds 41 values");
        assert_eq!(
            spare.take(25),
            Some(vec![3.0; 25]),
            "the 30 values, truncated: the smallest that holds 25"
        );
        assert_eq!(spare.take(25), Some(vec![4.0; 25]), "then the 40");
        assert_eq!(spare.take(1), None, "each comes back once");
    }

    #[test]
    fn a_spare_more_than_twice_the_request_is_kept_for_a_larger_one() {
        let spare = Spare(Mutex::new(Vec::new()));
        spare.recycle(vec![1.0; 100]);
        assert_eq!(spare.take(49), None, "100 values for 49: kept");
        assert_eq!(spare.take(50), Some(vec![1.0; 50]), "for 50: lent");
    }

    #[test]
    fn the_oldest_spare_goes_when_one_more_than_the_limit_is_recycled() {
        let spare = Spare(Mutex::new(Vec::new()));
        // sizes three times apart: each fits only its own request
        let len = |k: usize| 10 * 3usize.pow(k as u32);
        for k in 0..=SPARES {
            spare.recycle(vec![k as f32; len(k)]);
        }
        assert_eq!(spare.take(len(0)), None, "the oldest is gone");
        for k in 1..=SPARES {
            assert_eq!(spare.take(len(k)), Some(vec![k as f32; len(k)]));
        }
        spare.recycle(Vec::new());
        assert_eq!(spare.take(0), None, "an empty buffer is not kept");
    }
}
