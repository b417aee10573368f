//! Run directories under concurrent writers, killed processes, signals and damaged files: a
//! `DONE` run directory always holds what an uninterrupted run writes, and nothing else.

use crate::common::{coherent, metrics, run_ok, scratch_manifest, stderr, stdout, summary, LONG};
use coherent_record::{files, TensorFile};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Four shorter runs (two seeds, two label noises).
const SWEEP: &str = r#"
name = "sweep"
[dataset]
plugin = "mnist"
train_limit = 4000
[model]
plugin = "mlp"
hidden = [64]
[training]
batch_size = 50
epochs = 4
checkpoint_every = 20
[[metrics]]
plugin = "coherence"
every_steps = 40
sample = 200
[sweep]
"dataset.label_noise" = [0.0, 0.5]
seeds = [0, 1]
"#;

fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_coherent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("coherent starts")
}

/// Waits (at most two minutes) until `ready` holds.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what} did not happen"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join(files::METRICS)).map_or(0, |t| t.lines().count())
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Asserts that the run directories `got` and `want` hold the same record: every
/// `metrics.jsonl` value but the wall-clock time, the summary's final and peak values, the
/// final weights byte for byte, and only the files of a complete run.
fn same_record(got: &Path, want: &Path) {
    let strip = |lines: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        let mut lines = lines;
        for l in &mut lines {
            l.as_object_mut().unwrap().remove("elapsed_s");
        }
        lines
    };
    let (g, w) = (strip(metrics(got)), strip(metrics(want)));
    assert_eq!(g.len(), w.len(), "{}: metrics lines", got.display());
    assert!(g == w, "{}: metrics.jsonl differs", got.display());
    let (sg, sw) = (summary(got), summary(want));
    assert_eq!(sg["final"], sw["final"], "{}", got.display());
    assert_eq!(sg["peak"], sw["peak"], "{}", got.display());
    let weights = |d: &Path| std::fs::read(d.join("weights").join(files::FINAL_WEIGHTS)).unwrap();
    assert!(
        weights(got) == weights(want),
        "{}: final weights",
        got.display()
    );
    for leftover in [
        files::FAILED,
        files::INTERRUPTED,
        files::LOCK,
        files::CHECKPOINT,
        files::PREVIOUS_CHECKPOINT,
    ] {
        assert!(
            !got.join(leftover).exists(),
            "{}: {leftover} left",
            got.display()
        );
    }
    let tmp = std::fs::read_dir(got)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"));
    assert!(!tmp, "{}: a temporary file is left", got.display());
}

/// The uninterrupted run of [`LONG`] in `dir/reference`.
fn reference(dir: &Path, manifest: &str) -> PathBuf {
    let out = dir.join("reference");
    run_ok(&["run", manifest, "--out", &out.to_string_lossy()]);
    out.join("long/000")
}

/// A run of [`LONG`] that a test interrupts, and the record it must end with.
struct LongRun {
    /// The manifest's path.
    manifest: String,
    /// The run directory of the uninterrupted run.
    want: PathBuf,
    /// The `--out` directory of the interrupted run.
    out: PathBuf,
    /// Its run directory.
    run: PathBuf,
}

impl LongRun {
    /// Writes [`LONG`] in the scratch directory of `test`, runs it once uninterrupted for the
    /// reference, and starts it again into `runs`: the run and its process.
    fn start(test: &str) -> (LongRun, Child) {
        let (dir, manifest) = scratch_manifest(test, "long.toml", LONG);
        let want = reference(&dir, &manifest);
        let out = dir.join("runs");
        let run = out.join("long/000");
        let child = start(&["run", &manifest, "--out", &out.to_string_lossy()]);
        let long = LongRun {
            manifest,
            want,
            out,
            run,
        };
        (long, child)
    }
}

#[test]
fn a_second_writer_is_refused_and_the_first_run_is_untouched() {
    let (long, first) = LongRun::start("two-writers");
    let (m, want, out, run) = (&long.manifest, &long.want, &long.out, &long.run);
    wait_for("a first measurement", || lines(run) >= 1);
    // An edited copy of the manifest, same name, same --out.
    let (_, edited) = scratch_manifest(
        "two-writers-edited",
        "long.toml",
        &LONG.replace("lr = 0.1", "lr = 0.05"),
    );
    for manifest in [m, &edited] {
        let second = coherent(&["run", manifest, "--out", &out.to_string_lossy(), "--resume"]);
        let text = stderr(&second);
        assert_eq!(second.status.code(), Some(1), "{text}");
        assert!(
            text.contains("the run directory is being written by coherent (pid"),
            "{text}"
        );
        assert!(text.contains(&format!("pid {} on", first.id())), "{text}");
    }
    let done = first.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    same_record(run, want);
    // Once it is done, the edited manifest does not pass its run off as its own.
    let other = coherent(&["run", &edited, "--out", &out.to_string_lossy()]);
    let text = stderr(&other);
    assert_eq!(other.status.code(), Some(1), "{text}");
    assert!(
        text.contains("holds a complete run of another manifest"),
        "{text}"
    );
    same_record(run, want);
    let status = coherent(&[
        "sweep",
        &edited,
        "--status",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(stdout(&status).contains("conflict"), "{}", stdout(&status));
}

#[test]
fn sigterm_saves_a_checkpoint_and_the_run_continues_to_the_same_result() {
    let (long, child) = LongRun::start("sigterm");
    let (m, want, out, run) = (&long.manifest, &long.want, &long.out, &long.run);
    wait_for("three measurements", || lines(run) >= 3);
    signal(&child, "TERM");
    let stopped = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(1), "{text}");
    assert!(text.contains("interrupted at step"), "{text}");
    assert!(run.join(files::INTERRUPTED).exists() && run.join(files::CHECKPOINT).exists());
    assert!(!run.join(files::FAILED).exists() && !run.join(files::LOCK).exists());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join(files::RUN)).unwrap()).unwrap();
    assert_eq!(meta["status"], "interrupted");
    let status = coherent(&["sweep", m, "--status", "--out", &out.to_string_lossy()]);
    assert!(
        stdout(&status).contains("interrupted: interrupted at step"),
        "{}",
        stdout(&status)
    );
    run_ok(&["run", m, "--out", &out.to_string_lossy(), "--resume"]);
    let log = std::fs::read_to_string(run.join(files::LOG)).unwrap();
    assert!(log.contains("resumed from the checkpoint at step"), "{log}");
    same_record(run, want);
}

#[test]
fn a_killed_sweep_and_an_immediate_rerun_end_with_every_run_as_if_uninterrupted() {
    let (dir, m) = scratch_manifest("killed-sweep", "sweep.toml", SWEEP);
    let reference = dir.join("reference");
    run_ok(&["run", &m, "--out", &reference.to_string_lossy()]);
    let out = dir.join("runs");
    let o = out.to_string_lossy().into_owned();
    let sweep = out.join("sweep");
    let parent = start(&["sweep", &m, "--jobs", "2", "--out", &o]);
    let first = sweep.join("000-label_noise=0.0-seed=0");
    wait_for("the first runs' measurements", || lines(&first) >= 2);
    signal(&parent, "KILL");
    let _ = parent.wait_with_output();
    // Straight away, as a user would: runs still held by the old children are left alone.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let rerun = coherent(&["sweep", &m, "--jobs", "2", "--out", &o]);
        if rerun.status.success() {
            assert!(
                stdout(&rerun).contains("4 runs: 4 done, 0 failed"),
                "{}",
                stdout(&rerun)
            );
            break;
        }
        let text = format!("{}{}", stdout(&rerun), stderr(&rerun));
        assert!(text.contains("not every run is done"), "{text}");
        assert!(attempts < 20, "{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut resumed = 0;
    for entry in std::fs::read_dir(&sweep).unwrap() {
        let run = entry.unwrap().path();
        if run.join(files::MANIFEST).exists() {
            let name = run.file_name().unwrap();
            same_record(&run, &reference.join("sweep").join(name));
            let log = std::fs::read_to_string(run.join(files::LOG)).unwrap();
            resumed += usize::from(log.contains("resumed from the checkpoint at step"));
        }
    }
    // The children died with their sweep (saving a checkpoint) instead of running on.
    assert!(
        resumed >= 1,
        "no run was stopped with the sweep and continued"
    );
}

/// A copy of a run killed mid-way (with a last and a previous checkpoint), for each case.
fn killed_copies(dir: &Path, manifest: &str, cases: &[&str]) -> Vec<PathBuf> {
    let out = dir.join("killed");
    let run = out.join("long/000");
    let mut child = start(&["run", manifest, "--out", &out.to_string_lossy()]);
    wait_for("a checkpoint after four measurements", || {
        lines(&run) >= 4 && run.join(files::PREVIOUS_CHECKPOINT).exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !run.join(files::DONE).exists(),
        "finished before it was killed"
    );
    cases
        .iter()
        .map(|case| {
            let copy = dir.join(case).join("long/000");
            std::fs::create_dir_all(&copy).unwrap();
            let status = Command::new("cp")
                .args([
                    "-r",
                    &format!("{}/.", run.display()),
                    &copy.to_string_lossy(),
                ])
                .status()
                .unwrap();
            assert!(status.success());
            copy
        })
        .collect()
}

/// Rewrites the checkpoint `path` with `edit` applied, sealed again so only the edit is wrong.
fn edit_checkpoint(path: &Path, edit: impl FnOnce(&mut TensorFile)) {
    let mut file = TensorFile::read(path).unwrap();
    edit(&mut file);
    coherent_runner::checkpoint::seal(&mut file);
    file.write(path).unwrap();
}

/// Resumes the run in `run` (a copy under `<case>/long/000`) and returns its `run.json`.
fn resume(manifest: &str, run: &Path) -> serde_json::Value {
    let out = run.parent().unwrap().parent().unwrap();
    run_ok(&["run", manifest, "--out", &out.to_string_lossy(), "--resume"]);
    serde_json::from_str(&std::fs::read_to_string(run.join(files::RUN)).unwrap()).unwrap()
}

#[test]
fn damaged_checkpoints_and_records_are_never_resumed_and_never_stick() {
    let (dir, m) = scratch_manifest("damaged", "long.toml", LONG);
    let want = reference(&dir, &m);
    let cases = [
        "flipped",
        "nan",
        "step",
        "order",
        "both",
        "metrics-deleted",
        "metrics-edited",
    ];
    let runs = killed_copies(&dir, &m, &cases);
    let last = |run: &Path| run.join(files::CHECKPOINT);
    // A flipped bit: the checksum catches it; the previous checkpoint is used.
    let mut bytes = std::fs::read(last(&runs[0])).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(last(&runs[0]), bytes).unwrap();
    // A NaN weight, a step past the end, an order entry out of range (each sealed again).
    edit_checkpoint(&last(&runs[1]), |f| {
        let t = f
            .tensors
            .iter_mut()
            .find(|t| t.name == "fc1.weight")
            .unwrap();
        t.values[3] = f32::NAN;
    });
    edit_checkpoint(&last(&runs[2]), |f| {
        f.metadata.insert("step".into(), "1844674407370955".into());
    });
    edit_checkpoint(&last(&runs[3]), |f| {
        let mut order: Vec<u64> = serde_json::from_str(&f.metadata["order"]).unwrap();
        order[0] = 4_000_000_000;
        f.metadata
            .insert("order".into(), serde_json::to_string(&order).unwrap());
    });
    // Both checkpoints damaged: the run starts over.
    std::fs::write(last(&runs[4]), b"garbage").unwrap();
    std::fs::write(runs[4].join(files::PREVIOUS_CHECKPOINT), b"garbage").unwrap();
    // The record deleted, or a middle line edited: neither checkpoint continues it.
    std::fs::remove_file(runs[5].join(files::METRICS)).unwrap();
    let text = std::fs::read_to_string(runs[6].join(files::METRICS)).unwrap();
    let edited = text.replacen("\"coherence\":", "\"coherence\":1e3,\"x\":", 1);
    std::fs::write(runs[6].join(files::METRICS), edited).unwrap();

    let expect = [
        "checksum does not match",
        "tensor `fc1.weight` holds NaN",
        "is not within the run's",
        "not a permutation",
        "not a safetensors file",
        "metrics.jsonl",
        "differ from those written before the checkpoint",
    ];
    for ((case, run), why) in cases.iter().zip(&runs).zip(expect) {
        let meta = resume(&m, run);
        // The killed run's lock file is taken over, with a warning.
        let log = std::fs::read_to_string(run.join(files::LOG)).unwrap();
        assert!(
            log.contains("taking over the run directory from coherent (pid"),
            "{case}: {log}"
        );
        let refused = meta["resume_refused"].to_string();
        assert!(refused.contains(why), "{case}: {refused}");
        let from_previous = meta["resume_refused"].as_array().unwrap().len() == 1
            && meta["resumed_at_step"].is_u64()
            && !case.starts_with("metrics");
        assert_eq!(
            from_previous,
            !matches!(*case, "both" | "metrics-deleted" | "metrics-edited"),
            "{case}: {meta}"
        );
        same_record(run, &want);
    }
}

#[test]
fn a_record_deleted_under_a_running_run_fails_it_loudly() {
    let (dir, m) = scratch_manifest("deleted-record", "long.toml", LONG);
    let out = dir.join("runs");
    let run = out.join("long/000");
    let child = start(&["run", &m, "--out", &out.to_string_lossy()]);
    wait_for("two measurements", || lines(&run) >= 2);
    std::fs::remove_file(run.join(files::METRICS)).unwrap();
    let ended = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(1), "{text}");
    assert!(!run.join(files::DONE).exists());
    let failed = std::fs::read_to_string(run.join(files::FAILED)).unwrap();
    assert!(
        failed.contains("was deleted while the run was writing it"),
        "{failed}"
    );
}
