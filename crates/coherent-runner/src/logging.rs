//! Logging: the terminal follows `RUST_LOG` (env_logger); the current run's `log.txt` always
//! receives the run's `info` messages and above, whatever the terminal shows.

use indicatif::ProgressBar;
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::SystemTime;

static RUN_LOG: Mutex<Option<File>> = Mutex::new(None);
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Sends log messages to `file` (the run's `log.txt`) until the next call.
pub fn set_run_log(file: Option<File>) {
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = file;
}

/// Terminal log lines are printed above `bar` instead of through it.
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Installs the logger: `RUST_LOG` (default `info`) for the terminal, `info` for run logs.
pub fn init() {
    let terminal =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .target(env_logger::Target::Pipe(Box::new(TerminalWriter)))
            .format_timestamp_secs()
            .build();
    log::set_max_level(terminal.filter().max(LevelFilter::Info));
    let _ = log::set_boxed_logger(Box::new(Tee { terminal }));
}

struct Tee {
    terminal: env_logger::Logger,
}

impl Log for Tee {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info || self.terminal.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() <= Level::Info && record.target().starts_with("coherent") {
            if let Some(f) = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                let when = crate::utc_timestamp(SystemTime::now());
                let _ = writeln!(f, "[{when} {}] {}", record.level(), record.args());
            }
        }
        if self.terminal.matches(record) {
            self.terminal.log(record);
        }
    }

    fn flush(&self) {
        self.terminal.flush();
    }
}

/// Standard error, around the progress bar.
struct TerminalWriter;

impl Write for TerminalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
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
