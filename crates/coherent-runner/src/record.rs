//! The run directory: the record of one run, written so that it is never torn.
//!
//! ```text
//! manifest.toml   the run's manifest, sweep values applied
//! run.json        metadata: program version, git commit, host, start and end times
//! metrics.jsonl   one JSON object per measurement, appended line by line
//! summary.json    final and peak values, status (completed / diverged)
//! log.txt         the log of the run
//! checkpoint.bin  the state to resume from (weights, optimizer, generators, step)
//! DONE            completion marker, written last
//! FAILED          the error of an attempt that failed (removed when the run starts again)
//! ```
//!
//! Whole files are written atomically (temporary file, fsync, rename); `metrics.jsonl` gets one
//! complete line per `write` call followed by a flush and fsync.

use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the completion marker.
pub const DONE: &str = "DONE";

/// Name of the failure marker: written (atomically, holding the error) when an attempt at the
/// run fails with an error, removed when the run is started again.
pub const FAILED: &str = "FAILED";

/// An I/O failure on a named file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct RecordError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> RecordError + '_ {
    move |source| RecordError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a reader sees the old file or the new one, never a
/// part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(at(&tmp))?;
    f.write_all(bytes).map_err(at(&tmp))?;
    f.sync_all().map_err(at(&tmp))?;
    std::fs::rename(&tmp, path).map_err(at(path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json_atomic(path: &Path, value: &Value) -> Result<(), RecordError> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Removes the files `names` of the directory `dir` that exist.
pub fn remove_stale(dir: &Path, names: &[&str]) -> Result<(), RecordError> {
    for name in names {
        let f = dir.join(name);
        if f.exists() {
            std::fs::remove_file(&f).map_err(at(&f))?;
        }
    }
    Ok(())
}

/// The `summary.json` of the run in `dir`.
pub fn read_summary(dir: &Path) -> Result<Value, RecordError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(at(&path))?;
    serde_json::from_str(&text).map_err(|e| RecordError {
        path: path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })
}

/// An open run directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: File,
}

impl RunDir {
    /// Whether the run in `path` completed.
    pub fn is_done(path: &Path) -> bool {
        path.join(DONE).exists()
    }

    /// Creates (or restarts) the run directory at `path`, clearing an unfinished attempt.
    pub fn create(path: &Path) -> Result<RunDir, RecordError> {
        std::fs::create_dir_all(path).map_err(at(path))?;
        let stale = [
            "metrics.jsonl",
            "summary.json",
            DONE,
            FAILED,
            crate::checkpoint::FILE,
        ];
        remove_stale(path, &stale)?;
        let file = path.join("metrics.jsonl");
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(at(&file))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Reopens the run directory at `path` to continue from a checkpoint taken at `step`:
    /// keeps the complete `metrics.jsonl` records of earlier steps (the step itself is measured
    /// again), drops later ones and a torn last line, and returns the records kept.
    pub fn resume(path: &Path, step: usize) -> Result<(RunDir, Vec<Value>), RecordError> {
        let file = path.join("metrics.jsonl");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // Kept lines are copied byte for byte, so the values stay exactly as first written.
        let (mut kept, mut kept_text) = (Vec::new(), String::new());
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["step"].as_u64().is_some_and(|s| (s as usize) < step) {
                kept_text.push_str(line);
                kept.push(v);
            }
        }
        write_atomic(&file, kept_text.as_bytes())?;
        remove_stale(path, &["summary.json", DONE, FAILED])?;
        let metrics = OpenOptions::new()
            .append(true)
            .open(&file)
            .map_err(at(&file))?;
        let run = RunDir {
            path: path.to_path_buf(),
            metrics,
        };
        Ok((run, kept))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a whole file of the run atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), RecordError> {
        write_atomic(&self.path.join(name), bytes)
    }

    /// Writes a JSON file of the run atomically.
    pub fn write_json(&self, name: &str, value: &Value) -> Result<(), RecordError> {
        write_json_atomic(&self.path.join(name), value)
    }

    /// Appends one measurement to `metrics.jsonl`.
    pub fn append_metrics(&mut self, record: &Value) -> Result<(), RecordError> {
        let mut line = serde_json::to_string(record).expect("JSON values serialise");
        line.push('\n');
        let file = self.path.join("metrics.jsonl");
        self.metrics.write_all(line.as_bytes()).map_err(at(&file))?;
        self.metrics.sync_data().map_err(at(&file))
    }

    /// Marks the run complete (the last file written).
    pub fn finish(&self) -> Result<(), RecordError> {
        self.write(DONE, b"")
    }
}

/// Records that an attempt at the run in `dir` failed with `message` (creating `dir` if the run
/// failed before it had one).
pub fn mark_failed(dir: &Path, message: &str) -> Result<(), RecordError> {
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    let mut text = message.trim_end().to_string();
    text.push('\n');
    write_atomic(&dir.join(FAILED), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_append_and_restart_clears_the_unfinished_attempt() {
        let dir = std::env::temp_dir().join(format!("coherent-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut run = RunDir::create(&dir).unwrap();
        run.append_metrics(&serde_json::json!({"step": 0})).unwrap();
        run.append_metrics(&serde_json::json!({"step": 1})).unwrap();
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert_eq!(text, "{\"step\":0}\n{\"step\":1}\n");
        assert!(!RunDir::is_done(&dir));
        run.finish().unwrap();
        assert!(RunDir::is_done(&dir));
        mark_failed(&dir, "error: earlier attempt").unwrap();
        assert!(dir.join(FAILED).exists());
        let _ = RunDir::create(&dir).unwrap();
        assert!(!RunDir::is_done(&dir));
        assert!(!dir.join(FAILED).exists(), "a restart clears the failure");
        assert_eq!(
            std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap(),
            ""
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_keeps_earlier_complete_records_only() {
        let dir = std::env::temp_dir().join(format!("coherent-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = "{\"step\":0}\n{\"step\":10}\n{\"step\":20}\n{\"step\":30,\"lo";
        std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
        let (mut run, kept) = RunDir::resume(&dir, 20).unwrap();
        assert_eq!(kept.len(), 2);
        run.append_metrics(&serde_json::json!({"step": 20}))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap(),
            "{\"step\":0}\n{\"step\":10}\n{\"step\":20}\n"
        );
        // a torn line is dropped even when it would have been kept
        std::fs::write(dir.join("metrics.jsonl"), "{\"step\":0}\n{\"st").unwrap();
        assert_eq!(RunDir::resume(&dir, 50).unwrap().1.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
