//! Slurm job arrays: one array task per run, task id = run index.
//!
//! [`script()`] writes the batch script (pure text, tested without Slurm); [`submit()`] hands it
//! to `sbatch --parsable`; [`queued_indices()`] asks `squeue` which array tasks of a job name
//! are still pending or running, so a resubmission does not start a run twice. Everything the
//! script names is an absolute path: a task runs on whichever node Slurm picks, which sees the
//! same files through the cluster's shared filesystem.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The resources and options of the array job, as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (e.g. `02:00:00`).
    pub time: Option<String>,
    /// `--cpus-per-task`; also each task's `RAYON_NUM_THREADS`.
    pub cpus_per_task: Option<usize>,
    /// `--mem` (e.g. `4G`).
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=...%L`).
    pub max_parallel: Option<usize>,
    /// `--account`.
    pub account: Option<String>,
    /// Further `sbatch` options, one `#SBATCH` line each (e.g. `--qos=long`).
    pub extra: Vec<String>,
}

/// Seconds before a task's time limit at which Slurm sends it SIGTERM.
pub const SIGNAL_BEFORE_LIMIT_S: u32 = 120;

/// One array job: which runs, and the absolute paths its tasks need.
#[derive(Clone, Debug)]
pub struct ArrayJob {
    /// `--job-name`.
    pub name: String,
    /// The run indices to run (the array task ids).
    pub indices: Vec<usize>,
    /// Runs in the sweep (for the script's comment).
    pub total_runs: usize,
    /// The `coherent` binary.
    pub binary: PathBuf,
    /// The manifest.
    pub manifest: PathBuf,
    /// The `--out` directory of the runs.
    pub out: PathBuf,
    /// Working directory of every task (relative data paths resolve from it).
    pub workdir: PathBuf,
    /// Directory of the tasks' logs (`%A_%a.out`).
    pub log_dir: PathBuf,
    /// Resources and options.
    pub options: SlurmOptions,
}

/// Why a job could not be written or submitted.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A value cannot be written into the script.
    #[error("{0}")]
    Unsupported(String),
    /// `sbatch` is not on `PATH`.
    #[error("`sbatch` was not found on PATH: submitting needs a Slurm login node (with --dry-run the script is only written)")]
    NotInstalled,
    /// `sbatch` refused the job.
    #[error("sbatch failed ({status}): {stderr}")]
    Rejected {
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// `sbatch` could not be run.
    #[error("running sbatch: {0}")]
    Io(#[from] io::Error),
}

/// Run indices as a Slurm array specification: sorted, consecutive runs compacted (`0-3,7`).
pub fn array_spec(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut k = 0;
    while k < sorted.len() {
        let start = sorted[k];
        while k + 1 < sorted.len() && sorted[k + 1] == sorted[k] + 1 {
            k += 1;
        }
        let end = sorted[k];
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        k += 1;
    }
    parts.join(",")
}

/// Single-quotes `text` for the shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r#"'\''"#))
}

/// A value of an `#SBATCH` line: sbatch splits at whitespace unless double-quoted.
fn directive_value(what: &str, text: &str) -> Result<String, SlurmError> {
    if text.contains(['\n', '\r']) {
        return Err(SlurmError::Unsupported(format!(
            "{what} contains a line break: {text:?}"
        )));
    }
    if text.contains(char::is_whitespace) || text.contains(['"', '\\']) {
        Ok(format!(
            "\"{}\"",
            text.replace('\\', r"\\").replace('"', "\\\"")
        ))
    } else {
        Ok(text.to_string())
    }
}

fn utf8<'a>(what: &str, path: &'a Path) -> Result<&'a str, SlurmError> {
    path.to_str()
        .ok_or_else(|| SlurmError::Unsupported(format!("{what} is not UTF-8: {path:?}")))
}

/// The batch script of `job`.
pub fn script(job: &ArrayJob) -> Result<String, SlurmError> {
    if job.indices.is_empty() {
        return Err(SlurmError::Unsupported("an array job needs a run".into()));
    }
    let log_dir = utf8("the log directory", &job.log_dir)?;
    if log_dir.contains('%') {
        return Err(SlurmError::Unsupported(format!(
            "the --out directory must not contain `%` (Slurm reads it as a pattern): {log_dir}"
        )));
    }
    let o = &job.options;
    let mut array = array_spec(&job.indices);
    if let Some(limit) = o.max_parallel {
        array.push_str(&format!("%{limit}"));
    }
    let mut directives = vec![
        format!("--job-name={}", directive_value("the job name", &job.name)?),
        format!("--array={array}"),
        format!(
            "--output={}",
            directive_value("the log path", &format!("{log_dir}/%A_%a.out"))?
        ),
        format!(
            "--chdir={}",
            directive_value(
                "the working directory",
                utf8("the working directory", &job.workdir)?
            )?
        ),
    ];
    // SIGTERM two minutes before the time limit, to the batch script, which `exec`s the run:
    // the run saves a checkpoint and stops, and the next submission continues it.
    directives.push(format!("--signal=B:TERM@{SIGNAL_BEFORE_LIMIT_S}"));
    for (flag, value) in [
        ("partition", &o.partition),
        ("account", &o.account),
        ("time", &o.time),
        ("mem", &o.mem),
    ] {
        if let Some(v) = value {
            directives.push(format!("--{flag}={}", directive_value(flag, v)?));
        }
    }
    if let Some(c) = o.cpus_per_task {
        directives.push(format!("--cpus-per-task={c}"));
    }
    for extra in &o.extra {
        directives.push(directive_value("an --sbatch-arg", extra)?);
    }
    let manifest = utf8("the manifest path", &job.manifest)?;
    let mut text = String::from("#!/bin/bash\n");
    for d in &directives {
        text.push_str(&format!("#SBATCH {d}\n"));
    }
    text.push_str(&format!(
        "#\n# Written by `coherent sweep --slurm`: {} of the {} runs of {manifest} (those not done).\n\
         # Array task i runs run i of the sweep (`coherent sweep MANIFEST --list` names them),\n\
         # continuing from its checkpoint if an earlier attempt was killed.\n\
         set -eu\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         exec {} run {} --index \"$SLURM_ARRAY_TASK_ID\" --out {} --resume\n",
        job.indices.len(),
        job.total_runs,
        shell_quote(utf8("the coherent binary", &job.binary)?),
        shell_quote(manifest),
        shell_quote(utf8("the --out directory", &job.out)?),
    ));
    Ok(text)
}

/// Submits the script at `path` with `sbatch --parsable`; returns the job id.
pub fn submit(path: &Path) -> Result<String, SlurmError> {
    let output = match Command::new("sbatch").arg("--parsable").arg(path).output() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SlurmError::NotInstalled),
        other => other?,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if !output.status.success() || id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError::Rejected {
            status: output.status.to_string(),
            stderr: format!("{}{stdout}", String::from_utf8_lossy(&output.stderr))
                .trim()
                .to_string(),
        });
    }
    Ok(id)
}

/// Array task ids of this user's pending or running jobs named `name`, or `None` when
/// `squeue` is not available or fails.
pub fn queued_indices(name: &str) -> Option<Vec<usize>> {
    let output = Command::new("squeue")
        .args(["--me", "--noheader", "--array", "--format=%K", "--name"])
        .arg(name)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ArrayJob {
        ArrayJob {
            name: "mnist".into(),
            indices: vec![7, 0, 1, 2, 3, 9, 10],
            total_runs: 12,
            binary: "/opt/coherent/bin/coherent".into(),
            manifest: "/home/a/exp's.toml".into(),
            out: "/cluster/runs".into(),
            workdir: "/home/a/my project".into(),
            log_dir: "/cluster/runs/mnist/slurm".into(),
            options: SlurmOptions {
                partition: Some("cpu".into()),
                time: Some("01:00:00".into()),
                cpus_per_task: Some(4),
                mem: Some("8G".into()),
                max_parallel: Some(3),
                account: None,
                extra: vec!["--qos=long".into()],
            },
        }
    }

    #[test]
    fn array_specs_are_compact() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 7]), "0-3,7");
        assert_eq!(array_spec(&[5, 3, 4, 9, 11, 12]), "3-5,9,11-12");
        assert_eq!(array_spec(&[2]), "2");
        assert_eq!(array_spec(&[1, 1, 2]), "1-2");
    }

    #[test]
    fn script_names_everything_absolutely() {
        let s = script(&job()).unwrap();
        for line in [
            "#SBATCH --job-name=mnist\n",
            "#SBATCH --array=0-3,7,9-10%3\n",
            "#SBATCH --output=/cluster/runs/mnist/slurm/%A_%a.out\n",
            "#SBATCH --chdir=\"/home/a/my project\"\n",
            "#SBATCH --signal=B:TERM@120\n",
            "#SBATCH --partition=cpu\n",
            "#SBATCH --time=01:00:00\n",
            "#SBATCH --mem=8G\n",
            "#SBATCH --cpus-per-task=4\n",
            "#SBATCH --qos=long\n",
            "exec '/opt/coherent/bin/coherent' run '/home/a/exp'\\''s.toml' --index \"$SLURM_ARRAY_TASK_ID\" --out '/cluster/runs' --resume\n",
        ] {
            assert!(s.contains(line), "{line} missing from\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n#SBATCH"));
        assert!(!s.contains("--account"));
    }

    #[test]
    fn values_that_would_break_the_script_are_refused() {
        let mut j = job();
        j.options.extra = vec!["--qos=a\n#SBATCH --x".into()];
        assert!(script(&j).is_err());
        let mut j = job();
        j.log_dir = "/cluster/100%/slurm".into();
        assert!(script(&j).is_err());
    }
}
