//! SIGTERM and SIGINT: the run in progress saves a checkpoint and stops, marked interrupted.
//!
//! [`install`] replaces the default action of both signals (ending the process at once) with
//! a flag the trainer reads between steps: the run writes its checkpoint and an `INTERRUPTED`
//! marker, then the program exits, so `coherent run --resume` (or the next `coherent sweep`)
//! continues it. A second signal ends the process at once, for a run that does not stop
//! quickly enough. A Slurm task is sent SIGTERM before its time limit for the same purpose.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The signals a run treats as a request to stop; a second one ends the process.
const SIGNALS: [i32; 2] = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT];

/// The signal a run receives when the sweep that started it ends, or its terminal closes: a
/// request to stop, however often it comes (the kernel may send a parent-death signal more than
/// once), never an immediate end.
pub const HANGUP: i32 = signal_hook::consts::SIGHUP;

/// Exit code of a process ended by a second signal (128 + SIGTERM, as a shell reports it).
const FORCED_EXIT: i32 = 143;

/// Turns SIGTERM and SIGINT into a stop request for the run in progress (once per process;
/// later calls do nothing). Without it the signals end the process as usual.
pub fn install() -> std::io::Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in SIGNALS {
        // The second signal ends the process: registered first, it sees the flag unset on the
        // first signal and set on the second.
        signal_hook::flag::register_conditional_shutdown(signal, FORCED_EXIT, flag.clone())?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    signal_hook::flag::register(HANGUP, flag.clone())?;
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether a stop was requested since [`install`].
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Requests a stop as a signal would (for tests and for programs that stop runs themselves).
pub fn request() {
    if let Some(f) = FLAG.get() {
        f.store(true, Ordering::Relaxed);
    }
}
