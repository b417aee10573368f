//! The state of a sweep's runs, read from their directories alone.
//!
//! A run's state follows from its markers (see `coherent_record::files`), so any machine that sees the
//! run directories — the laptop, a login node, a Slurm job — tells the same story:
//!
//! | state     | rule                                                                        |
//! | --------- | --------------------------------------------------------------------------- |
//! | `done`    | `DONE` exists                                                               |
//! | `conflict` | `DONE` exists, but the directory's `manifest.toml` is not this run's (another manifest wrote it) |
//! | `running` | a live process holds the directory's lock (`LOCK`)                          |
//! | `failed`  | `FAILED` exists (the attempt ended with an error)                           |
//! | `interrupted` | `INTERRUPTED` exists: stopped by a signal after saving a checkpoint     |
//! | `started` | the directory exists without any of these: stopped without recording an outcome (killed, out of time or memory) |
//! | `missing` | no directory                                                                |
//!
//! The first rule that holds decides.

use crate::sweep::RunSpec;
use coherent_record::files::{DONE, FAILED, INTERRUPTED};
use coherent_record::{Holder, RunLock};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a run stands, from its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Complete (`DONE`).
    Done,
    /// Complete, but of another manifest: its `manifest.toml` differs from the run's.
    Conflict,
    /// A live process writes it (the holder of its lock).
    Running(Holder),
    /// The last attempt failed; the error recorded in `FAILED`.
    Failed(String),
    /// Stopped by a signal after saving a checkpoint; the message of `INTERRUPTED`.
    Interrupted(String),
    /// Stopped without recording an outcome.
    Started,
    /// Never started (no directory).
    Missing,
}

impl RunState {
    /// The state of the run whose directory is `dir`.
    pub fn of(dir: &Path) -> RunState {
        if dir.join(DONE).exists() {
            RunState::Done
        } else if let Some(holder) = RunLock::holder(dir) {
            RunState::Running(holder)
        } else if let Ok(message) = std::fs::read_to_string(dir.join(FAILED)) {
            RunState::Failed(message)
        } else if let Ok(message) = std::fs::read_to_string(dir.join(INTERRUPTED)) {
            RunState::Interrupted(message)
        } else if dir.is_dir() {
            RunState::Started
        } else {
            RunState::Missing
        }
    }

    /// Whether a sweep starts (or continues) the run: it is not done, not of another
    /// manifest, and no live process writes it.
    pub fn startable(&self) -> bool {
        !matches!(
            self,
            RunState::Done | RunState::Conflict | RunState::Running(_)
        )
    }

    /// `done`, `failed`, `started` or `missing`.
    pub fn label(&self) -> &'static str {
        match self {
            RunState::Done => "done",
            RunState::Conflict => "conflict",
            RunState::Running(_) => "running",
            RunState::Failed(_) => "failed",
            RunState::Interrupted(_) => "interrupted",
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
            RunState::Running(holder) => format!("running: {holder}"),
            RunState::Conflict => "conflict: the directory holds a complete run of another manifest (its manifest.toml differs); `coherent run --index N --force` replaces it".into(),
            RunState::Interrupted(message) => format!("interrupted: {}", message.trim()),
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

/// The state of run `spec` in `dir`: [`RunState::of`], and a complete run whose
/// `manifest.toml` is not the run's is [`RunState::Conflict`].
pub fn state_of_run(dir: &Path, spec: &RunSpec) -> RunState {
    let state = RunState::of(dir);
    if state == RunState::Done && !same_manifest(dir, spec) {
        return RunState::Conflict;
    }
    state
}

/// Whether the run directory `dir` records the manifest of run `spec` (or records none).
pub fn same_manifest(dir: &Path, spec: &RunSpec) -> bool {
    match std::fs::read_to_string(dir.join(coherent_record::files::MANIFEST)) {
        Ok(text) => crate::plan::resolved_text(spec).is_none_or(|own| own == text),
        Err(_) => true,
    }
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
                state: state_of_run(&dir, spec),
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
    /// Complete, but of another manifest.
    pub conflict: usize,
    /// Written by a live process now.
    pub running: usize,
    /// Stopped by a signal, checkpoint saved.
    pub interrupted: usize,
    /// Stopped without an outcome.
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
                RunState::Conflict => c.conflict += 1,
                RunState::Running(_) => c.running += 1,
                RunState::Interrupted(_) => c.interrupted += 1,
                RunState::Started => c.started += 1,
                RunState::Missing => c.missing += 1,
            }
        }
        c
    }

    /// Every run.
    pub fn total(&self) -> usize {
        let busy = self.conflict + self.running + self.interrupted;
        self.done + self.failed + busy + self.started + self.missing
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.total();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "{n} run{s}: {} done, {} failed", self.done, self.failed)?;
        // Shown when there are some: most sweeps never see them.
        let rare = [
            (self.conflict, "conflict"),
            (self.running, "running"),
            (self.interrupted, "interrupted"),
        ];
        for (count, label) in rare {
            if count > 0 {
                write!(f, ", {count} {label}")?;
            }
        }
        write!(f, ", {} started, {} missing", self.started, self.missing)
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
        std::fs::remove_file(dir.join(FAILED)).unwrap();
        std::fs::write(dir.join(INTERRUPTED), "interrupted at step 3\n").unwrap();
        assert_eq!(
            RunState::of(&dir).describe(),
            "interrupted: interrupted at step 3"
        );
        let me = Holder {
            pid: 9,
            ..Holder::default()
        };
        let lock = RunLock::acquire(&dir, &me).unwrap();
        assert_eq!(
            RunState::of(&dir),
            RunState::Running(me),
            "a live writer wins"
        );
        drop(lock);
        std::fs::write(dir.join(DONE), "").unwrap();
        assert_eq!(RunState::of(&dir), RunState::Done, "DONE wins");
    }

    #[test]
    fn counts_render_every_state() {
        let mut c = Counts {
            done: 3,
            failed: 1,
            started: 0,
            missing: 2,
            ..Counts::default()
        };
        assert_eq!(
            c.to_string(),
            "6 runs: 3 done, 1 failed, 0 started, 2 missing"
        );
        (c.running, c.interrupted) = (1, 2);
        assert_eq!(
            c.to_string(),
            "9 runs: 3 done, 1 failed, 1 running, 2 interrupted, 0 started, 2 missing"
        );
    }
}
