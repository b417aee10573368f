//! Log output shared by the terminal, the progress bar and the current run's `log.txt`.

use indicatif::ProgressBar;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;

static RUN_LOG: Mutex<Option<File>> = Mutex::new(None);
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Sends log lines to `file` (the run's `log.txt`) as well as the terminal, until the next call.
pub fn set_run_log(file: Option<File>) {
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = file;
}

/// Log lines are printed above `bar` instead of through it.
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// A writer for `env_logger`: standard error (around the progress bar) and the run's log file.
#[derive(Debug, Default)]
pub struct TeeWriter;

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = f.write_all(buf);
        }
        match BAR.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(bar) => bar.suspend(|| io::stderr().write_all(buf)),
            None => io::stderr().write_all(buf),
        }?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
