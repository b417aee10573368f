//! Writing a run directory: whole files atomically, `metrics.jsonl` line by line.
//!
//! The run keeps count of what it appended to `metrics.jsonl` (lines, bytes and their CRC-32),
//! so a checkpoint can say which record it continues ([`MetricsMark`]), a resume can check
//! that the file still holds exactly that, and a run can check before it marks itself `DONE`
//! that nobody deleted or changed the file under it.

use crate::{files, remove_stale, write_atomic, write_json_atomic, MetricsLine, RecordError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How much of `metrics.jsonl` a run had written: its first `lines` lines, `bytes` bytes
/// whose CRC-32 is `crc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsMark {
    /// Complete lines.
    pub lines: usize,
    /// Bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of those bytes.
    pub crc: u32,
}

/// An open run directory, for the run writing it.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: File,
    mark: MetricsMark,
    crc: crc32fast::Hasher,
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
            files::INTERRUPTED,
            files::CHECKPOINT,
            files::PREVIOUS_CHECKPOINT,
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
        RunDir::open(path, MetricsMark::default())
    }

    fn open(path: &Path, mark: MetricsMark) -> Result<RunDir, RecordError> {
        let file = path.join(files::METRICS);
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(RecordError::io(&file))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
            mark,
            crc: crc32fast::Hasher::new_with_initial_len(mark.crc, mark.bytes),
        })
    }

    /// The lines of `metrics.jsonl` in `path` that a checkpoint taken at `step` with `mark`
    /// continues: the file must begin with exactly the bytes the run had written then, lines
    /// of earlier steps in order. Reads only; `Err` says what differs.
    pub fn check_resume(
        path: &Path,
        step: usize,
        mark: &MetricsMark,
    ) -> Result<Vec<MetricsLine>, String> {
        let file = path.join(files::METRICS);
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", files::METRICS))?;
        let len = usize::try_from(mark.bytes).map_err(|_| "the checkpoint's mark is too large")?;
        let Some(prefix) = bytes.get(..len) else {
            return Err(format!(
                "{} holds {} bytes, fewer than the {len} written before the checkpoint (deleted or cut)",
                files::METRICS,
                bytes.len()
            ));
        };
        if crc32fast::hash(prefix) != mark.crc {
            return Err(format!(
                "the first {} lines of {} differ from those written before the checkpoint (edited or damaged)",
                mark.lines,
                files::METRICS
            ));
        }
        let text = std::str::from_utf8(prefix).map_err(|_| "metrics.jsonl is not UTF-8")?;
        let mut kept: Vec<MetricsLine> = Vec::with_capacity(mark.lines);
        for (k, line) in text.lines().enumerate() {
            let parsed = MetricsLine::parse(line).map_err(|e| format!("line {}: {e}", k + 1))?;
            if kept.last().is_some_and(|l| l.step >= parsed.step) || parsed.step >= step {
                return Err(format!("line {}: step {} out of order", k + 1, parsed.step));
            }
            kept.push(parsed);
        }
        if kept.len() != mark.lines {
            return Err(format!(
                "{} lines before the checkpoint, {} expected",
                kept.len(),
                mark.lines
            ));
        }
        Ok(kept)
    }

    /// Reopens the run directory at `path` to continue from a checkpoint whose record was
    /// `mark` (checked with [`RunDir::check_resume`]): `metrics.jsonl` is cut back to what was
    /// written before the checkpoint (the checkpoint's step is measured again), and the
    /// markers of the earlier attempt's end are removed.
    pub fn resume(path: &Path, mark: MetricsMark) -> Result<RunDir, RecordError> {
        let file = path.join(files::METRICS);
        let bytes = std::fs::read(&file).map_err(RecordError::io(&file))?;
        let len = usize::try_from(mark.bytes)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        write_atomic(&file, &bytes[..len])?;
        let ends = [
            files::SUMMARY,
            files::DONE,
            files::FAILED,
            files::INTERRUPTED,
        ];
        remove_stale(path, &ends)?;
        RunDir::open(path, mark)
    }

    /// What the run has written to `metrics.jsonl` so far.
    pub fn mark(&self) -> MetricsMark {
        MetricsMark {
            crc: self.crc.clone().finalize(),
            ..self.mark
        }
    }

    /// Checks that `metrics.jsonl` still holds exactly what the run wrote: `Err` when it was
    /// deleted, cut, extended or edited by something else.
    pub fn verify_metrics(&self) -> Result<(), RecordError> {
        let file = self.path.join(files::METRICS);
        let changed = |what: String| {
            RecordError::malformed(
                &file,
                None,
                format!("{what} while the run was writing it, so the record is not the run's: run it again with --force"),
            )
        };
        let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => changed("was deleted".into()),
            _ => RecordError::io(&file)(e),
        })?;
        let mark = self.mark();
        if bytes.len() as u64 != mark.bytes || crc32fast::hash(&bytes) != mark.crc {
            return Err(changed(format!(
                "changed ({} bytes, {} written)",
                bytes.len(),
                mark.bytes
            )));
        }
        Ok(())
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
        let text = line.to_line();
        self.metrics
            .write_all(text.as_bytes())
            .map_err(RecordError::io(&file))?;
        self.crc.update(text.as_bytes());
        self.mark.lines += 1;
        self.mark.bytes += text.len() as u64;
        self.metrics.sync_data().map_err(RecordError::io(&file))
    }

    /// Marks the run complete (the last file written), once `metrics.jsonl` is checked to hold
    /// exactly what the run wrote.
    pub fn finish(&self) -> Result<(), RecordError> {
        self.verify_metrics()?;
        self.write(files::DONE, b"")
    }

    /// Marks the run interrupted (by a signal, after its checkpoint was saved) with `message`.
    pub fn interrupted(&self, message: &str) -> Result<(), RecordError> {
        self.write(
            files::INTERRUPTED,
            format!("{}\n", message.trim_end()).as_bytes(),
        )
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

    /// A run that wrote lines 0, 10, 20, took a checkpoint at step 20 after line 10, and was
    /// killed while writing line 30: its directory and the checkpoint's mark.
    fn killed_run(dir: &Path) -> (MetricsMark, String) {
        let mut run = RunDir::create(dir).unwrap();
        run.append_metrics(&line(0)).unwrap();
        run.append_metrics(&line(10)).unwrap();
        let mark = run.mark();
        run.append_metrics(&line(20)).unwrap();
        let before = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
        let torn = format!("{before}{{\"step\":30,\"lo");
        std::fs::write(dir.join(files::METRICS), torn).unwrap();
        (mark, before)
    }

    #[test]
    fn resume_keeps_the_lines_before_the_checkpoint_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (mark, before) = killed_run(dir);
        let kept = RunDir::check_resume(dir, 20, &mark).unwrap();
        assert_eq!(kept.iter().map(|l| l.step).collect::<Vec<_>>(), [0, 10]);
        let mut run = RunDir::resume(dir, mark).unwrap();
        run.append_metrics(&line(20)).unwrap();
        let now = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
        assert_eq!(now, before);
        run.verify_metrics().unwrap();
        assert_eq!(run.mark().lines, 3);
    }

    #[test]
    fn a_record_that_differs_from_the_checkpoints_is_not_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (mark, before) = killed_run(dir);
        let file = dir.join(files::METRICS);
        std::fs::remove_file(&file).unwrap();
        let e = RunDir::check_resume(dir, 20, &mark).unwrap_err();
        assert!(e.contains("metrics.jsonl"), "{e}");
        std::fs::write(&file, before.replacen("10", "11", 1)).unwrap();
        let e = RunDir::check_resume(dir, 20, &mark).unwrap_err();
        assert!(e.contains("differ"), "{e}");
        std::fs::write(&file, &before[..5]).unwrap();
        let e = RunDir::check_resume(dir, 20, &mark).unwrap_err();
        assert!(e.contains("fewer than"), "{e}");
    }

    #[test]
    fn a_record_changed_under_the_run_stops_it_from_finishing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut run = RunDir::create(dir).unwrap();
        run.append_metrics(&line(0)).unwrap();
        std::fs::remove_file(dir.join(files::METRICS)).unwrap();
        run.append_metrics(&line(1)).unwrap();
        let e = run.finish().unwrap_err().to_string();
        assert!(
            e.contains("was deleted while the run was writing it"),
            "{e}"
        );
        assert!(!RunDir::is_done(dir));
    }
}
