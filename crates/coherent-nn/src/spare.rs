//! The spare gradient buffers: activation gradients that a backward pass has finished with,
//! kept for the next activation gradients they can hold (the sizes of a pass's gradients come
//! back in the next pass), so that a pass neither allocates nor zero-fills most of its
//! gradients. A spare holds whatever it last held: the first consumer of a gradient made from
//! it writes every value ([`crate::ActGrad::write_or_add`]), or it is zero-filled first.
//!
//! [`SPARES`] buffers, the largest, not more: each spare kept is memory held from one step to
//! the next, and a large gradient is the one that costs most to allocate and fill (a small
//! one, such as the loss's, is let go of first). A spare is lent only to a gradient of at
//! least half its size, so that a small gradient does not take a large buffer that its pass
//! needs later, and its size is its capacity: a buffer lent to a smaller gradient holds its
//! full size again for the next. With six, every gradient of ResNet-20's warm steps but its
//! two smallest finds one, and VGG's all but its smaller ones (11% of its gradient values).

use crate::switch::Switch;
use std::sync::Mutex;

/// The spares of every network of the process.
static SPARE: Spare = Spare(Mutex::new(Vec::new()));

/// Buffers kept at most.
const SPARES: usize = 6;

/// On while a caller runs with first writes checked
/// ([`crate::check::with_first_writes_checked`]).
pub(crate) static CHECKING: Switch = Switch::new();

/// Keeps `buffer` as a spare, letting the smallest go if more than [`SPARES`] are kept then.
pub(crate) fn recycle(buffer: Vec<f32>) {
    SPARE.recycle(buffer);
}

/// A buffer of `len` values with arbitrary contents: the smallest spare whose capacity holds
/// `len` values and no more than twice as many.
pub(crate) fn take(len: usize) -> Option<Vec<f32>> {
    SPARE.take(len)
}

/// Whether a gradient's first consumer receives NaN in every value (so that a value it does not
/// write shows), rather than whatever the buffer held.
pub(crate) fn first_writes_checked() -> bool {
    CHECKING.is_on()
}

/// Adds `buffer` to `kept`, letting the one of least capacity go if more than `most` are kept
/// then.
pub(crate) fn keep_largest(kept: &mut Vec<Vec<f32>>, buffer: Vec<f32>, most: usize) {
    kept.push(buffer);
    if kept.len() > most {
        let smallest = (0..kept.len()).min_by_key(|&k| kept[k].capacity());
        smallest.map(|k| kept.swap_remove(k));
    }
}

/// The spare buffers, none empty.
struct Spare(Mutex<Vec<Vec<f32>>>);

impl Spare {
    fn recycle(&self, buffer: Vec<f32>) {
        if buffer.capacity() == 0 {
            return;
        }
        let mut spares = self.0.lock().expect("spare buffer lock");
        keep_largest(&mut spares, buffer, SPARES);
    }

    fn take(&self, len: usize) -> Option<Vec<f32>> {
        let mut spares = self.0.lock().expect("spare buffer lock");
        let fits = |k: &usize| (len..=2 * len).contains(&spares[*k].capacity());
        let best = (0..spares.len())
            .filter(fits)
            .min_by_key(|&k| spares[k].capacity())?;
        let mut buffer = spares.remove(best);
        // within its capacity: values past its last length are zeros, the rest as they were
        buffer.resize(len, 0.0);
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
    fn a_spare_lent_to_a_smaller_gradient_holds_its_full_size_again() {
        let spare = Spare(Mutex::new(Vec::new()));
        spare.recycle(vec![2.0; 100]);
        let lent = spare.take(60).expect("100 values for 60");
        assert_eq!(lent, vec![2.0; 60]);
        spare.recycle(lent);
        let whole = spare.take(100).expect("back with its 100 values' room");
        assert_eq!(&whole[..60], &[2.0; 60][..], "the values it held");
        assert_eq!(&whole[60..], &[0.0; 40][..], "zeros past them");
    }

    #[test]
    fn the_smallest_spare_goes_when_one_more_than_the_limit_is_recycled() {
        let spare = Spare(Mutex::new(Vec::new()));
        // sizes three times apart, each fitting only its own request, the smallest in the
        // middle of the order
        let len = |k: usize| 10 * 3usize.pow(k as u32);
        let order: Vec<usize> = (1..=SPARES / 2)
            .chain([0])
            .chain(SPARES / 2 + 1..=SPARES)
            .collect();
        for &k in &order {
            spare.recycle(vec![k as f32; len(k)]);
        }
        assert_eq!(spare.take(len(0)), None, "the smallest is gone");
        for k in 1..=SPARES {
            assert_eq!(spare.take(len(k)), Some(vec![k as f32; len(k)]));
        }
        spare.recycle(Vec::new());
        assert_eq!(spare.take(0), None, "an empty buffer is not kept");
    }
}
