//! Process-wide switches that checks turn on around a closure, such as
//! [`crate::check::with_first_writes_checked`]: on while any caller is inside (callers may nest
//! and run at the same time), off otherwise.

use std::sync::atomic::{AtomicUsize, Ordering};

/// On while a caller runs with every layer in a pass of its own
/// ([`crate::check::without_fused_layers`]).
pub(crate) static UNFUSED: Switch = Switch::new();

/// A switch, off until a caller runs a closure with it on.
pub(crate) struct Switch(AtomicUsize);

impl Switch {
    /// A switch that is off.
    pub(crate) const fn new() -> Switch {
        Switch(AtomicUsize::new(0))
    }

    /// Whether some caller is running with the switch on.
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }

    /// Runs `f` with the switch on (off again afterwards, unless another caller has it on,
    /// even if `f` panics).
    pub(crate) fn while_on<R>(&self, f: impl FnOnce() -> R) -> R {
        struct On<'a>(&'a AtomicUsize);
        impl Drop for On<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.0.fetch_add(1, Ordering::Relaxed);
        let _on = On(&self.0);
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_inside_nested_callers_and_off_after_them() {
        let switch = Switch::new();
        assert!(!switch.is_on());
        switch.while_on(|| {
            assert!(switch.is_on());
            switch.while_on(|| assert!(switch.is_on()));
            assert!(switch.is_on(), "still on in the outer caller");
        });
        assert!(!switch.is_on());
        let panicked = std::panic::catch_unwind(|| switch.while_on(|| panic!("inside")));
        assert!(panicked.is_err());
        assert!(!switch.is_on(), "off after a panic");
    }
}
