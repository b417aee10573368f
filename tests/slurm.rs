//! `coherent sweep --slurm` against a real Slurm cluster: the single-node cluster that
//! `tests/slurm/start-cluster.sh` starts (`.ci/run` installs Slurm and starts it).
//!
//! Without a cluster the test prints `SKIPPED: ...` straight to the terminal (past the test
//! harness's capture) and returns; with `COHERENT_REQUIRE_SLURM` set (as `.ci/run` does once
//! the cluster is up) a missing cluster fails the test instead.

use crate::common::{coherent, scratch, stderr, stdout};
use crate::sweeps::{four_runs, FOUR_DIRS};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `program args`, killing it after `limit`; `None` if it cannot start or times out.
fn run_for(program: &str, args: &[&str], limit: Duration) -> Option<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let clock = Instant::now();
    while child.try_wait().ok()?.is_none() {
        if clock.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().ok()
}

/// Why the cluster cannot be used, if it cannot.
fn unavailable() -> Option<String> {
    for tool in ["sbatch", "sinfo", "squeue"] {
        if run_for(tool, &["--version"], Duration::from_secs(10)).is_none() {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    match run_for(
        "sinfo",
        &["--noheader", "--format=%t"],
        Duration::from_secs(20),
    ) {
        Some(out) if out.status.success() => {
            let states = String::from_utf8_lossy(&out.stdout).to_string();
            if states
                .lines()
                .any(|s| s.starts_with("idle") || s.starts_with("mix"))
            {
                None
            } else {
                Some(format!("no idle node (sinfo: {:?})", states.trim()))
            }
        }
        Some(out) => Some(format!("sinfo failed: {}", stderr(&out).trim())),
        None => Some("the cluster does not answer (sinfo timed out)".into()),
    }
}

/// Waits until job `id` has left the queue.
fn wait_for(id: &str, limit: Duration) {
    let clock = Instant::now();
    loop {
        let out = run_for(
            "squeue",
            &["--noheader", "--jobs", id],
            Duration::from_secs(20),
        );
        let queued = out.as_ref().map(|o| (o.status.success(), stdout(o)));
        match queued {
            // Gone from the queue (Slurm may also forget the id: then squeue fails).
            Some((true, text)) if text.trim().is_empty() => return,
            Some((false, _)) => return,
            _ => {}
        }
        if clock.elapsed() > limit {
            let _ = run_for("scancel", &[id], Duration::from_secs(20));
            panic!("job {id} did not finish within {limit:?}: {queued:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Submits the sweep and returns the job id.
fn submit(m: &str, out: &str, extra: &[&str]) -> String {
    let mut args = vec!["sweep", m, "--out", out, "--slurm"];
    args.extend(extra);
    let submitted = coherent(&args);
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let text = stdout(&submitted);
    let id = text
        .split("submitted job ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no job id in {text}"));
    assert!(id.chars().all(|c| c.is_ascii_digit()), "{text}");
    id.to_string()
}

#[test]
fn slurm_array_job_runs_every_missing_run_or_reports_skipped() {
    if let Some(reason) = unavailable() {
        if std::env::var_os("COHERENT_REQUIRE_SLURM").is_some() {
            panic!("COHERENT_REQUIRE_SLURM is set but Slurm is unusable: {reason}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: slurm_array_job_runs_every_missing_run: {reason}; run tests/slurm/start-cluster.sh as root to run it\n"
        );
        return;
    }
    let dir = scratch("slurm");
    let m = four_runs(&dir, "slurm-it");
    let out = dir.join("runs").to_string_lossy().to_string();
    let exp = dir.join("runs/slurm-it");
    let limit = Duration::from_secs(180);

    let id = submit(
        &m,
        &out,
        &["--max-parallel", "2", "--time", "00:05:00", "--mem", "200M"],
    );
    wait_for(&id, limit);
    let status = coherent(&["sweep", &m, "--out", &out, "--status"]);
    assert!(
        status.status.success(),
        "{}\n{}",
        stdout(&status),
        std::fs::read_dir(exp.join("slurm"))
            .map(|d| d
                .map(|e| e.unwrap().path().display().to_string())
                .collect::<Vec<_>>()
                .join(" "))
            .unwrap_or_default()
    );
    assert!(
        stdout(&status).contains("4 runs: 4 done"),
        "{}",
        stdout(&status)
    );
    for (k, run) in FOUR_DIRS.iter().enumerate() {
        for f in ["DONE", "summary.json", "metrics.jsonl"] {
            assert!(exp.join(run).join(f).exists(), "{run}/{f}");
        }
        let log = exp.join(format!("slurm/{id}_{k}.out"));
        let text = std::fs::read_to_string(&log).unwrap_or_else(|_| panic!("{}", log.display()));
        assert!(text.contains(run), "the task's log names its run: {text}");
    }
    let again = coherent(&["sweep", &m, "--out", &out, "--slurm", "--dry-run"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing to submit"),
        "{}",
        stdout(&again)
    );

    // A lost run: the resubmission covers it alone.
    std::fs::remove_dir_all(exp.join(FOUR_DIRS[1])).unwrap();
    let id2 = submit(&m, &out, &[]);
    wait_for(&id2, limit);
    let script = std::fs::read_to_string(exp.join("slurm/sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=1\n"), "{script}");
    assert!(exp.join(format!("slurm/{id2}_1.out")).exists());
    let status = coherent(&["sweep", &m, "--out", &out, "--status"]);
    assert!(status.status.success(), "{}", stdout(&status));
}
