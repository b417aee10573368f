//! Malformed manifests, generated from tables (more than 150, each distinct): unknown keys in
//! every section and every plugin's table, wrong types and out-of-range values of every plugin
//! parameter and runner key, values that overflow or cannot fit the batch or the machine,
//! duplicate keys, bad sweep axes, bytes that are not UTF-8, and paths that are not manifests.
//! `coherent check` must refuse each with exit code 2 and located errors only, without a panic,
//! within a timeout and in less than 200 MB.

#[path = "malformed_cases.rs"]
mod cases;

use crate::common::{coherent_limited, scratch, Limited};
use crate::manifests::mkfifo;
use cases::{
    byte_cases, defect_cases, manifest, plugin_cases, runner_cases, sweep_cases, syntax_cases,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether every error of `stderr` is located in `file` (`file:line:col: error:`), or, for a
/// path that is not a manifest, names it (`file: error:`).
fn located(stderr: &str, file: &str, whole_file: bool) -> Result<(), String> {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
    if errors.is_empty() {
        return Err("no error".into());
    }
    for line in errors {
        let Some(rest) = line.strip_prefix(file).and_then(|r| r.strip_prefix(':')) else {
            return Err(format!("not about {file}: {line}"));
        };
        let mut parts = rest.splitn(3, ':');
        let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let numbers = l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok();
        if !(numbers || whole_file && rest.starts_with(" error:")) {
            return Err(format!("not located: {line}"));
        }
    }
    Ok(())
}

/// Checks one case: exit code 2, located errors, no panic, no timeout, little memory.
fn refused(
    name: &str,
    out: &Limited,
    file: &str,
    whole_file: bool,
    expect: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push("timed out".into());
    }
    if out.code != Some(2) {
        problems.push(format!("exit code {:?}", out.code));
    }
    if out.stderr.contains("panicked") || out.stderr.contains("memory allocation") {
        problems.push("panicked or aborted".into());
    }
    if let Err(e) = located(&out.stderr, file, whole_file) {
        problems.push(e);
    }
    if let Some(piece) = expect.filter(|p| !out.stderr.contains(p)) {
        problems.push(format!("missing {piece:?}"));
    }
    if out.peak_kib >= 200_000 {
        problems.push(format!("{} KiB", out.peak_kib));
    }
    problems
        .into_iter()
        .map(|p| format!("{name}: {p}\n{}", out.stderr))
        .collect()
}

/// Checks `paths` (manifests, or paths that are not) on two threads.
fn check_all(paths: Vec<(String, PathBuf, bool, Option<String>)>) -> Vec<String> {
    let paths = std::sync::Mutex::new(paths);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((name, path, whole, expect)) = paths.lock().unwrap().pop() else {
                    break;
                };
                let file = path.to_string_lossy().into_owned();
                let out = coherent_limited(&["check", &file], Duration::from_secs(60));
                let found = refused(&name, &out, &file, whole, expect.as_deref());
                failures.lock().unwrap().extend(found);
            });
        }
    });
    failures.into_inner().unwrap()
}

/// Every generated case is distinct and refused as it should be.
#[test]
fn malformed_manifests_are_refused_with_located_errors_in_little_memory() {
    let dir = scratch("malformed");
    let mut cases = plugin_cases();
    cases.extend(runner_cases());
    cases.extend(defect_cases());
    cases.extend(sweep_cases());
    cases.extend(syntax_cases());
    cases.extend(byte_cases());
    let texts: BTreeSet<&[u8]> = cases.iter().map(|c| c.bytes.as_slice()).collect();
    let twins: Vec<&str> = cases
        .iter()
        .enumerate()
        .filter(|(k, c)| {
            let earlier = &cases[..*k];
            earlier
                .iter()
                .any(|d| d.bytes == c.bytes || d.name == c.name)
        })
        .map(|(_, c)| c.name.as_str())
        .collect();
    assert!(twins.is_empty(), "cases repeating another: {twins:?}");
    assert_eq!(texts.len(), cases.len());
    let mut paths = Vec::new();
    for c in &cases {
        let path = dir.join(format!("{}.toml", c.name));
        std::fs::write(&path, &c.bytes).unwrap();
        paths.push((c.name.clone(), path, false, c.expect.clone()));
    }
    paths.extend(not_manifests(&dir));
    let total = paths.len();
    assert!(total >= 150, "{total} cases");
    let failures = check_all(paths);
    assert!(
        failures.is_empty(),
        "{} of {total} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Paths that are not manifests: a directory, a FIFO without a writer, a device, a file over
/// the size limit.
fn not_manifests(dir: &Path) -> Vec<(String, PathBuf, bool, Option<String>)> {
    let fifo = dir.join("fifo.toml");
    mkfifo(&fifo);
    let big = dir.join("oversized.toml");
    let mut text = manifest(&[], "");
    text.push_str(&"# padding\n".repeat(110_000));
    std::fs::write(&big, text).unwrap();
    let sub = dir.join("a-directory.toml");
    std::fs::create_dir_all(&sub).unwrap();
    [
        ("directory", sub, "a directory"),
        ("fifo", fifo, "a FIFO"),
        ("dev-zero", PathBuf::from("/dev/zero"), "a character device"),
        ("oversized", big, "at most 1 MiB"),
    ]
    .into_iter()
    .map(|(name, path, what)| (name.to_string(), path, true, Some(what.to_string())))
    .collect()
}
