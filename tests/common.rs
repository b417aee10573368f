//! Helpers shared by the integration tests.

use coherent_core::PluginKind;
use coherent_runner::Diagnostics;
use proptest::test_runner::TestCaseError;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Each kind of plugin with the manifest section that holds its plugins.
pub const PLUGIN_SECTIONS: [(PluginKind, &str); 5] = [
    (PluginKind::Network, "model"),
    (PluginKind::Dataset, "dataset"),
    (PluginKind::Metric, "metrics"),
    (PluginKind::Aggregator, "aggregator"),
    (PluginKind::Observer, "observers"),
];

/// Every diagnostic of a rejection of the manifest `file` is located, and rendered as
/// `file:line:col: error: ...` (a property of a proptest).
pub fn prop_located(diagnostics: &Diagnostics, file: &str) -> Result<(), TestCaseError> {
    proptest::prop_assert!(!diagnostics.0.is_empty());
    for d in &diagnostics.0 {
        let (Some(line), Some(column)) = (d.line, d.column) else {
            return Err(TestCaseError::fail(format!("no location: {d}")));
        };
        let prefix = format!("{file}:{line}:{column}: error: ");
        proptest::prop_assert!(d.to_string().starts_with(&prefix), "{}", d);
    }
    Ok(())
}

/// Runs the `coherent` binary with `args` from the workspace root.
pub fn coherent(args: &[&str]) -> Output {
    coherent_in(&root(), args)
}

/// Runs the `coherent` binary with `args` from the directory `dir`.
pub fn coherent_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coherent"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the coherent binary runs")
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory named after the test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coherent-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of a `metrics.jsonl`, parsed.
pub fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

/// `summary.json`, parsed.
pub fn summary(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("JSON")
}

/// Writes a manifest into `dir` and returns its path as a string.
pub fn write_manifest(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.to_string_lossy().into_owned()
}

/// Runs the `coherent` binary with `args` from the workspace root and asserts that it
/// succeeded (showing its standard error if not).
pub fn run_ok(args: &[&str]) -> Output {
    let out = coherent(args);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// [`run_ok`] from the directory `dir`.
pub fn run_ok_in(dir: &Path, args: &[&str]) -> Output {
    let out = coherent_in(dir, args);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// A fresh scratch directory named after the test, with the manifest `text` written into it
/// as `name`: the directory and the manifest's path.
pub fn scratch_manifest(test: &str, name: &str, text: &str) -> (PathBuf, String) {
    let dir = scratch(test);
    let manifest = write_manifest(&dir, name, text);
    (dir, manifest)
}

/// Runs the binary with `args`, asserts that it exits with `code`, and returns its standard
/// error; `what` names the case in a failure.
pub fn fails(code: i32, args: &[&str], what: &str) -> String {
    let out = coherent(args);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{what}: {text}");
    text
}

/// The string `key` of every element of the JSON array `array` (the names of a report's
/// cases, of a run's plugin crates, ...).
pub fn strings_of_each<'a>(array: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    array
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|element| element[key].as_str().expect("a string"))
        .collect()
}

/// The target directory this test binary was built in (`target/`, or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Runs `cargo ARGS` in the crate directory `dir` (a crate outside the workspace) with this
/// build's target directory, so the framework's compiled crates are shared; asserts success
/// (showing the last 40 lines of stderr and the stdout if not) and returns the output.
pub fn cargo_in(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs");
    let err = stderr(&out);
    let tail: Vec<&str> = err.lines().rev().take(40).collect();
    assert!(
        out.status.success(),
        "cargo {args:?} in {}:\n{}\n{}",
        dir.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        stdout(&out)
    );
    out
}

/// Whether `python3` can import `numpy` and `safetensors`. If it cannot, prints `SKIPPED:
/// numpy: ...` for the caller to return (the closing line of `.ci/run` reports it), or panics
/// when `COHERENT_REQUIRE_NUMPY` is set (CI, where they are installed).
pub fn numpy_available() -> bool {
    let out = Command::new("python3")
        .args(["-c", "import numpy, safetensors"])
        .output();
    let reason = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stderr);
            let last = text.trim().lines().last().map(str::to_string);
            last.unwrap_or_else(|| format!("python3 exited with {}", o.status))
        }
        Err(e) => format!("python3 does not start: {e}"),
    };
    skip_unless_required(
        "numpy",
        "COHERENT_REQUIRE_NUMPY",
        &format!("python3 cannot import numpy and safetensors ({reason})"),
        "pip install numpy safetensors",
    );
    false
}

/// A test that needs what this machine lacks (`reason`): panics when the environment variable
/// `require` is set (CI, which installs it), else prints `SKIPPED: what: reason; hint to run it`
/// straight to the terminal (the closing line of `.ci/run` reports it) for the caller to return.
pub fn skip_unless_required(what: &str, require: &str, reason: &str, hint: &str) {
    if std::env::var_os(require).is_some() {
        panic!("{require} is set but {reason}");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED: {what}: {reason}; {hint} to run it\n"
    );
}

/// How a child process of [`coherent_limited`] ended.
#[derive(Debug)]
pub struct Limited {
    /// Its exit code (`None`: killed by a signal, or by the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Its peak resident memory, in KiB: its `VmHWM`, read while it runs (see
    /// [`coherent_limited`]).
    pub peak_kib: u64,
    /// Whether it was killed for running longer than the timeout.
    pub timed_out: bool,
}

/// Runs the `coherent` binary with `args` from the workspace root, killing it after `timeout`,
/// and measures its peak memory: the high-water mark of its own address space (`VmHWM`), read
/// every millisecond until it exits. (`ru_maxrss` from `wait4` will not do: Linux starts
/// a spawned child's count at its parent's resident size, so it would grow with whatever the
/// other tests of this process hold.)
// The child is reaped by `wait4`, which std does not see.
#[allow(clippy::zombie_processes)]
pub fn coherent_limited(args: &[&str], timeout: std::time::Duration) -> Limited {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherent"))
        .args(args)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the coherent binary starts");
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = r.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("piped")));
    let err = pipe(Box::new(child.stderr.take().expect("piped")));
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    let (mut timed_out, mut peak_kib) = (false, 0);
    let status = loop {
        peak_kib = peak_kib.max(high_water_kib(pid).unwrap_or(0));
        let mut status = 0;
        // SAFETY: `rusage` is plain data that wait4 fills; an all-zero value is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if timed_out { 0 } else { libc::WNOHANG };
        // SAFETY: waits for our own child, writing into the two locals.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            break status;
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if start.elapsed() > timeout {
            // SAFETY: the child has not been reaped, so `pid` is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            timed_out = true;
        } else {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Limited {
        code,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        peak_kib,
        timed_out,
    }
}

/// `VmHWM` of process `pid` in KiB, while it runs the `coherent` binary: `None` before (a
/// child that has not yet replaced the test process's image by the binary's counts the test
/// process's pages as its own) and after.
fn high_water_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)
    };
    if field("Name:")? != "coherent" {
        return None;
    }
    field("VmHWM:")?.parse().ok()
}

/// One run of about a thousand steps, a checkpoint every 20 steps, a measurement every 30.
pub const LONG: &str = r#"
name = "long"
seed = 4
[dataset]
plugin = "mnist"
label_noise = 0.5
[model]
plugin = "mlp"
hidden = [64]
[training]
lr = 0.1
batch_size = 100
epochs = 12
checkpoint_every = 20
[[metrics]]
plugin = "coherence"
every_steps = 30
sample = 300
"#;
