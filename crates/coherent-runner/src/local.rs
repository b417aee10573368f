//! Running a sweep's runs on this machine as child processes, a few at a time.
//!
//! Each run is its own process (`coherent run MANIFEST --index i`), so a run that fails — or
//! crashes — takes no other run with it; its output goes to `stdout.txt` and `stderr.txt` in
//! its run directory. A child that ends in failure without recording it (a crash, a signal)
//! gets a `FAILED` marker from here, so the run directory always tells how the attempt ended.
//!
//! Children die with the sweep: each is asked (on Linux, `PR_SET_PDEATHSIG`) to receive
//! SIGTERM when the process that started it ends, however it ends, and so saves a checkpoint
//! and stops. A run whose directory a live process still holds (a child of an earlier sweep
//! that is still stopping) is not started again: nothing of it is touched.

use crate::status::RunState;
use coherent_record::{files, mark_failed, RecordError, RunLock};
use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One run to execute.
#[derive(Clone, Debug)]
pub struct LocalRun {
    /// Its index in the sweep.
    pub index: usize,
    /// Its directory name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
}

/// How one run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The run.
    pub run: LocalRun,
    /// Its state after the child exited (`Done` or `Failed`).
    pub state: RunState,
    /// Wall time of the child.
    pub elapsed: Duration,
}

/// Runs `runs`, `jobs` at a time, each as the child process `command(run)`; `on_finish` is
/// called (on this thread) as each one ends. Returns the outcomes in the order they ended.
pub fn run_local(
    runs: &[LocalRun],
    jobs: usize,
    command: impl Fn(&LocalRun) -> Command + Sync,
    mut on_finish: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let queue = Mutex::new(runs.iter().cloned().collect::<VecDeque<_>>());
    let (send, receive) = mpsc::channel();
    let mut outcomes = Vec::with_capacity(runs.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, runs.len().max(1)) {
            let send = send.clone();
            let (queue, command) = (&queue, &command);
            scope.spawn(move || loop {
                let Some(run) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let clock = Instant::now();
                let state = match RunLock::holder(&run.dir) {
                    Some(holder) => RunState::Running(holder),
                    None => settle(&run, spawn_and_wait(&run, command(&run))),
                };
                let outcome = Outcome {
                    run,
                    state,
                    elapsed: clock.elapsed(),
                };
                if send.send(outcome).is_err() {
                    break;
                }
            });
        }
        drop(send);
        for outcome in receive {
            on_finish(&outcome);
            outcomes.push(outcome);
        }
    });
    outcomes
}

/// Starts the child with its output in the run directory and waits for it.
fn spawn_and_wait(run: &LocalRun, mut command: Command) -> Result<ExitStatus, String> {
    let open = |name: &str| {
        let path = run.dir.join(name);
        File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    std::fs::create_dir_all(&run.dir).map_err(|e| format!("{}: {e}", run.dir.display()))?;
    let (stdout, stderr) = (open(files::STDOUT)?, open(files::STDERR)?);
    die_with_this_process(&mut command);
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))
}

/// Makes the child receive SIGHUP when this process ends (Linux; elsewhere nothing): a run
/// treats it as a request to save a checkpoint and stop (see `interrupt`).
#[cfg(target_os = "linux")]
fn die_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid, raise), touching no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGHUP) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended before the request was made.
            if libc::getppid() != parent {
                libc::raise(libc::SIGHUP);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_this_process(_command: &mut Command) {}

/// The run's state once its child has exited, recording a failure the child did not record.
fn settle(run: &LocalRun, exit: Result<ExitStatus, String>) -> RunState {
    let state = RunState::of(&run.dir);
    let problem = match (&exit, &state) {
        (_, RunState::Done | RunState::Failed(_) | RunState::Interrupted(_)) => None,
        (_, RunState::Running(_)) => None,
        (Ok(status), _) if status.success() => {
            Some("error: the run exited without marking itself complete".to_string())
        }
        (Ok(status), _) => Some(format!(
            "error: the run's process ended ({status}) without recording an error; see stderr.txt"
        )),
        (Err(message), _) => Some(format!("error: {message}")),
    };
    match problem {
        None => state,
        Some(message) => {
            let recorded: Result<(), RecordError> = mark_failed(&run.dir, &message);
            if let Err(e) = recorded {
                return RunState::Failed(format!("{message} (and {e})"));
            }
            RunState::Failed(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_ends_done_or_failed_and_failures_stay_local() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let runs: Vec<LocalRun> = (0..5)
            .map(|i| LocalRun {
                index: i,
                name: format!("{i:03}"),
                dir: root.join(format!("{i:03}")),
            })
            .collect();
        let mut seen = 0;
        // Even runs succeed and mark themselves done; run 1 fails silently; run 3 records why.
        let outcomes = run_local(
            &runs,
            2,
            |run| {
                let script = match run.index {
                    1 => "echo crash >&2; exit 3".to_string(),
                    3 => "echo 'error: bad data' > FAILED; exit 1".to_string(),
                    _ => "echo hi; touch DONE".to_string(),
                };
                let mut c = Command::new("sh");
                c.args(["-c", &script]).current_dir(&run.dir);
                c
            },
            |_| seen += 1,
        );
        assert_eq!((outcomes.len(), seen), (5, 5));
        for o in &outcomes {
            match o.run.index {
                1 => {
                    assert!(o.state.describe().contains("without recording an error"));
                    assert_eq!(
                        std::fs::read_to_string(o.run.dir.join("stderr.txt")).unwrap(),
                        "crash\n"
                    );
                }
                3 => assert_eq!(o.state.describe(), "failed: error: bad data"),
                _ => {
                    assert_eq!(o.state, RunState::Done);
                    assert_eq!(
                        std::fs::read_to_string(o.run.dir.join("stdout.txt")).unwrap(),
                        "hi\n"
                    );
                }
            }
        }
    }
}
