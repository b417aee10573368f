//! The state of a sweep's runs, read from their directories alone.
//!
//! A run's state follows from its markers (see `coherent_record::files`), so any machine that sees the
//! run directories — the laptop, a login node, a Slurm job — tells the same story:
//!
//! | state     | rule                                                                        |
//! | --------- | --------------------------------------------------------------------------- |
//! | `done`    | `DONE` exists                                                               |
//! | `failed`  | `FAILED` exists and `DONE` does not (the attempt ended with an error)       |
//! | `started` | the directory exists, without `DONE` or `FAILED`: running now, or stopped without recording an outcome (killed, out of time or memory) |
//! | `missing` | no directory                                                                |

use crate::sweep::RunSpec;
use coherent_record::files::{DONE, FAILED};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a run stands, from its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Complete (`DONE`).
    Done,
    /// The last attempt failed; the error recorded in `FAILED`.
    Failed(String),
    /// Running, or stopped without recording an outcome.
    Started,
    /// Never started (no directory).
    Missing,
}

impl RunState {
    /// The state of the run whose directory is `dir`.
    pub fn of(dir: &Path) -> RunState {
        if dir.join(DONE).exists() {
            RunState::Done
        } else if let Ok(message) = std::fs::read_to_string(dir.join(FAILED)) {
            RunState::Failed(message)
        } else if dir.is_dir() {
            RunState::Started
        } else {
            RunState::Missing
        }
    }

    /// `done`, `failed`, `started` or `missing`.
    pub fn label(&self) -> &'static str {
        match self {
            RunState::Done => "done",
            RunState::Failed(_) => "failed",
            RunState::Started => "started",
            RunState::Missing => "missing",
        }
    }

    /// The state with, for a failure, the first line of its error.
    pub fn describe(&self) -> String {
        match self {
            RunState::Failed(message) => {
                let first = message.lines().find(|l| !l.trim().is_empty());
                format!("failed: {}", first.unwrap_or("(no message)").trim())
            }
            other => other.label().to_string(),
        }
    }
}

/// One run of a sweep and its state.
#[derive(Clone, Debug)]
pub struct RunStatus {
    /// The run's index in the sweep.
    pub index: usize,
    /// Its directory name (`002-label_noise=0.5-seed=0`).
    pub name: String,
    /// Its sweep values, as `key=value`.
    pub params: Vec<String>,
    /// Its directory.
    pub dir: PathBuf,
    /// Its state.
    pub state: RunState,
}

/// The state of every run of `runs`, whose directories sit in `experiment_dir`.
pub fn sweep_status(experiment_dir: &Path, runs: &[RunSpec]) -> Vec<RunStatus> {
    runs.iter()
        .map(|spec| {
            let name = spec.dir_name();
            let dir = experiment_dir.join(&name);
            RunStatus {
                index: spec.index,
                params: spec
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
                state: RunState::of(&dir),
                name,
                dir,
            }
        })
        .collect()
}

/// How many runs are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Complete.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Running or stopped without an outcome.
    pub started: usize,
    /// Never started.
    pub missing: usize,
}

impl Counts {
    /// Counts the states of `runs`.
    pub fn of(runs: &[RunStatus]) -> Counts {
        let mut c = Counts::default();
        for r in runs {
            match r.state {
                RunState::Done => c.done += 1,
                RunState::Failed(_) => c.failed += 1,
                RunState::Started => c.started += 1,
                RunState::Missing => c.missing += 1,
            }
        }
        c
    }

    /// Every run.
    pub fn total(&self) -> usize {
        self.done + self.failed + self.started + self.missing
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.total();
        write!(
            f,
            "{n} run{}: {} done, {} failed, {} started, {} missing",
            if n == 1 { "" } else { "s" },
            self.done,
            self.failed,
            self.started,
            self.missing
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_record::mark_failed;

    #[test]
    fn markers_decide_the_state() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let dir = root.join("000");
        assert_eq!(RunState::of(&dir), RunState::Missing);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(RunState::of(&dir), RunState::Started);
        mark_failed(&dir, "\nerror: no such file\nmore\n").unwrap();
        let state = RunState::of(&dir);
        assert_eq!(state.label(), "failed");
        assert_eq!(state.describe(), "failed: error: no such file");
        std::fs::write(dir.join(DONE), "").unwrap();
        assert_eq!(RunState::of(&dir), RunState::Done, "DONE wins");
    }

    #[test]
    fn counts_render_every_state() {
        let c = Counts {
            done: 3,
            failed: 1,
            started: 0,
            missing: 2,
        };
        assert_eq!(
            c.to_string(),
            "6 runs: 3 done, 1 failed, 0 started, 2 missing"
        );
    }
}
