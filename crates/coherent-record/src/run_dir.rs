//! Writing a run directory: whole files atomically, `metrics.jsonl` line by line.

use crate::{files, remove_stale, write_atomic, write_json_atomic, MetricsLine, RecordError};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An open run directory, for the run writing it.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: File,
}

impl RunDir {
    /// Whether the run in `path` completed (`DONE` exists).
    pub fn is_done(path: &Path) -> bool {
        path.join(files::DONE).exists()
    }

    /// Creates (or restarts) the run directory at `path`, clearing an earlier attempt (its
    /// weights files too, and a checkpoint of an earlier version).
    pub fn create(path: &Path) -> Result<RunDir, RecordError> {
        std::fs::create_dir_all(path).map_err(RecordError::io(path))?;
        let stale = [
            files::METRICS,
            files::SUMMARY,
            files::LEARNING_TIMES,
            files::SAMPLES,
            files::DONE,
            files::FAILED,
            files::CHECKPOINT,
            files::OLD_CHECKPOINT,
        ];
        remove_stale(path, &stale)?;
        let weights = path.join(files::WEIGHTS);
        if let Ok(entries) = std::fs::read_dir(&weights) {
            let names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".safetensors"))
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            remove_stale(&weights, &names)?;
        }
        RunDir::open(path)
    }

    fn open(path: &Path) -> Result<RunDir, RecordError> {
        let file = path.join(files::METRICS);
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(RecordError::io(&file))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Reopens the run directory at `path` to continue from a checkpoint taken at `step`:
    /// keeps the complete `metrics.jsonl` lines of earlier steps byte for byte (the step itself
    /// is measured again), drops later ones and a torn last line, and returns the lines kept.
    pub fn resume(path: &Path, step: usize) -> Result<(RunDir, Vec<MetricsLine>), RecordError> {
        let file = path.join(files::METRICS);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let (mut kept, mut kept_text) = (Vec::new(), String::new());
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let Ok(parsed) = MetricsLine::parse(line.trim_end()) else {
                continue;
            };
            if parsed.step < step {
                kept_text.push_str(line);
                kept.push(parsed);
            }
        }
        write_atomic(&file, kept_text.as_bytes())?;
        remove_stale(path, &[files::SUMMARY, files::DONE, files::FAILED])?;
        Ok((RunDir::open(path)?, kept))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a whole file of the run atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), RecordError> {
        write_atomic(&self.path.join(name), bytes)
    }

    /// Writes the weights file `name` (see [`files::WEIGHTS`]) atomically, creating the
    /// folder.
    pub fn write_weights(&self, name: &str, file: &crate::TensorFile) -> Result<(), RecordError> {
        let dir = self.path.join(files::WEIGHTS);
        std::fs::create_dir_all(&dir).map_err(RecordError::io(&dir))?;
        file.write(&dir.join(name))
    }

    /// Writes a JSON record of the run atomically.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<(), RecordError> {
        write_json_atomic(&self.path.join(name), value)
    }

    /// Appends one measurement point to `metrics.jsonl` (flushed to disk).
    pub fn append_metrics(&mut self, line: &MetricsLine) -> Result<(), RecordError> {
        let file = self.path.join(files::METRICS);
        self.metrics
            .write_all(line.to_line().as_bytes())
            .map_err(RecordError::io(&file))?;
        self.metrics.sync_data().map_err(RecordError::io(&file))
    }

    /// Marks the run complete (the last file written).
    pub fn finish(&self) -> Result<(), RecordError> {
        self.write(files::DONE, b"")
    }
}

/// Records that an attempt at the run in `dir` failed with `message` (creating `dir` if the run
/// failed before it had one).
pub fn mark_failed(dir: &Path, message: &str) -> Result<(), RecordError> {
    std::fs::create_dir_all(dir).map_err(RecordError::io(dir))?;
    let mut text = message.trim_end().to_string();
    text.push('\n');
    write_atomic(&dir.join(files::FAILED), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: usize) -> MetricsLine {
        MetricsLine {
            step,
            ..MetricsLine::default()
        }
    }

    #[test]
    fn lines_append_and_restart_clears_the_unfinished_attempt() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let mut run = RunDir::create(&dir).unwrap();
        run.append_metrics(&line(0)).unwrap();
        run.append_metrics(&line(1)).unwrap();
        let text = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!RunDir::is_done(&dir));
        run.finish().unwrap();
        assert!(RunDir::is_done(&dir));
        mark_failed(&dir, "error: earlier attempt").unwrap();
        assert!(dir.join(files::FAILED).exists());
        run.write_weights(files::FINAL_WEIGHTS, &crate::TensorFile::default())
            .unwrap();
        std::fs::write(dir.join(files::OLD_CHECKPOINT), "coherent-checkpoint 2\n").unwrap();
        let weights = dir.join(files::WEIGHTS).join(files::FINAL_WEIGHTS);
        assert!(weights.exists());
        let _ = RunDir::create(&dir).unwrap();
        assert!(!weights.exists(), "a restart clears the weights");
        assert!(!dir.join(files::OLD_CHECKPOINT).exists());
        assert!(!RunDir::is_done(&dir));
        assert!(
            !dir.join(files::FAILED).exists(),
            "a restart clears the failure"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(files::METRICS)).unwrap(),
            ""
        );
    }

    #[test]
    fn resume_keeps_earlier_complete_lines_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let text = "{\"step\":0, \"x\":1.0}\n{\"step\":10}\n{\"step\":20}\n{\"step\":30,\"lo";
        std::fs::write(dir.join(files::METRICS), text).unwrap();
        let (mut run, kept) = RunDir::resume(dir, 20).unwrap();
        assert_eq!(kept.len(), 2);
        run.append_metrics(&line(20)).unwrap();
        let now = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
        assert!(
            now.starts_with("{\"step\":0, \"x\":1.0}\n{\"step\":10}\n{\"step\":20,"),
            "{now}"
        );
        // a torn line is dropped even when it would have been kept
        std::fs::write(dir.join(files::METRICS), "{\"step\":0}\n{\"st").unwrap();
        assert_eq!(RunDir::resume(dir, 50).unwrap().1.len(), 1);
    }
}
