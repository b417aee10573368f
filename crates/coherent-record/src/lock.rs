//! One writer per run directory: an operating-system lock on `<run>/LOCK`, held for the run's
//! life.
//!
//! The file names its holder (host, process id, start time, program), so a second writer is
//! refused with a message that says who holds the directory. The lock is the kernel's (`flock`
//! through [`std::fs::File::try_lock`]): it ends with the process that holds it, however that
//! process ends, so a directory left by a killed run is free again at once; the file it leaves
//! behind only says who held it, and the next writer takes over with a warning. A run that
//! ends normally removes the file.
//!
//! On a filesystem shared between hosts (a Slurm cluster's), the lock holds across hosts where
//! the filesystem supports locks (NFSv4, or NFSv3 with its lock daemon); the holder of a dead
//! host's lock is released when the server's lease on it expires.

use crate::{files, RecordError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Who holds (or last held) a run directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The host's name.
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
    /// When the process took the lock (UTC, ISO 8601).
    pub started: String,
    /// The program (`coherent`, or a researcher's own binary).
    pub program: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, since {})",
            self.program, self.pid, self.host, self.started
        )
    }
}

/// The lock of a run directory, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    taken_over: Option<Holder>,
}

/// How many times [`RunLock::acquire`] tries again when the lock file is replaced under it.
const ATTEMPTS: usize = 8;

impl RunLock {
    /// Takes the lock of the run directory `dir` (creating it) for `me`. `Err` with
    /// [`RecordError::Busy`] when a live process holds it. A lock file left by a process that
    /// no longer holds the lock is taken over ([`RunLock::taken_over`] names that process,
    /// for the caller to warn about).
    pub fn acquire(dir: &Path, me: &Holder) -> Result<RunLock, RecordError> {
        std::fs::create_dir_all(dir).map_err(RecordError::io(dir))?;
        let path = dir.join(files::LOCK);
        for _ in 0..ATTEMPTS {
            let mut file = open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(RecordError::Busy {
                        dir: dir.to_path_buf(),
                        holder: read_holder(&mut file),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(RecordError::io(&path)(e)),
            }
            // The holder before us may have removed the file after we opened it: the lock is
            // then on a file nobody else will open. Only the file at `path` counts.
            if !same_file(&file, &path) {
                continue;
            }
            let taken_over = read_holder(&mut file);
            write_holder(&mut file, me).map_err(RecordError::io(&path))?;
            return Ok(RunLock {
                file,
                path,
                taken_over,
            });
        }
        Err(RecordError::malformed(
            &path,
            None,
            "the lock file keeps being replaced by other processes",
        ))
    }

    /// Who holds the lock of `dir` now, if a live process does (`None`: free, or no
    /// directory). Takes the lock for an instant to find out.
    pub fn holder(dir: &Path) -> Option<Holder> {
        let path = dir.join(files::LOCK);
        let mut file = OpenOptions::new().read(true).write(true).open(path).ok()?;
        match file.try_lock() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => Some(read_holder(&mut file).unwrap_or_default()),
            Err(TryLockError::Error(_)) => None,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The process whose lock file was left behind (it was killed or crashed), if any.
    pub fn taken_over(&self) -> Option<&Holder> {
        self.taken_over.as_ref()
    }

    /// The warning to give when a lock file was left behind.
    pub fn warning(&self) -> Option<String> {
        self.taken_over.as_ref().map(|previous| {
            format!(
                "{}: taking over the run directory from {previous}, which no longer holds it (it was stopped or crashed)",
                self.path.parent().unwrap_or(&self.path).display()
            )
        })
    }
}

impl Drop for RunLock {
    /// Removes the lock file while still holding the lock, then lets go of it.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File, RecordError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(RecordError::io(path))
}

/// Whether `file` is the file now at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_holder(file: &mut File, me: &Holder) -> std::io::Result<()> {
    let text = serde_json::to_string(me).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(pid: u32) -> Holder {
        Holder {
            host: "here".into(),
            pid,
            started: "2026-01-01T00:00:00Z".into(),
            program: "coherent".into(),
        }
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holder_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let lock = RunLock::acquire(&dir, &me(1)).unwrap();
        assert_eq!(RunLock::holder(&dir), Some(me(1)));
        let e = RunLock::acquire(&dir, &me(2)).unwrap_err();
        assert!(e.is_busy());
        assert!(e.to_string().contains("coherent (pid 1 on here"), "{e}");
        drop(lock);
        assert!(
            !dir.join(files::LOCK).exists(),
            "a released lock leaves no file"
        );
        assert_eq!(RunLock::holder(&dir), None);
        let _again = RunLock::acquire(&dir, &me(2)).unwrap();
    }

    #[test]
    fn a_lock_file_left_behind_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join(files::LOCK),
            serde_json::to_string(&me(7)).unwrap(),
        )
        .unwrap();
        assert_eq!(RunLock::holder(dir), None, "nobody holds it");
        let lock = RunLock::acquire(dir, &me(8)).unwrap();
        assert_eq!(lock.taken_over(), Some(&me(7)));
        assert!(lock.warning().unwrap().contains("coherent (pid 7 on here"));
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), me(8));
    }
}
